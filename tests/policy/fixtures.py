"""A tiny dialog corpus in the schema.py row format, covering all five dialog types.

Deterministic for a seed; values vary so a model has to copy them from the user turn.
"""

from __future__ import annotations

import hashlib
import json
import random

import polars as pl

from toolkiln.calls import format_calls
from toolkiln.schema import dialogs_frame

SYSTEM = "You can call the tools below. Answer with a list of calls like [f(a=1)], or reply in text."

APIS = [
    {"name": "weather.get_forecast", "description": "Get the weather forecast for a city.",
     "parameters": {"type": "object", "properties": {"city": {"type": "string", "description": "City name"},
                                                     "days": {"type": "integer", "description": "Days ahead"},
                                                     "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]}},
                    "required": ["city"]},
     "returns": {"type": "object"}, "domain": "weather", "category": "forecast", "functionalities": ["forecast"]},
    {"name": "hotel.search", "description": "Search hotels in a city for a date.",
     "parameters": {"type": "object", "properties": {"city": {"type": "string"}, "checkin": {"type": "string"},
                                                     "guests": {"type": "integer"}},
                    "required": ["city", "checkin"]},
     "returns": {"type": "object"}, "domain": "travel", "category": "hotels", "functionalities": ["search"]},
    {"name": "hotel.book", "description": "Book a hotel by its id.",
     "parameters": {"type": "object", "properties": {"hotel_id": {"type": "string"}, "nights": {"type": "integer"}},
                    "required": ["hotel_id", "nights"]},
     "returns": {"type": "object"}, "domain": "travel", "category": "hotels", "functionalities": ["book"]},
    {"name": "fx.convert", "description": "Convert an amount between currencies.",
     "parameters": {"type": "object", "properties": {"amount": {"type": "number"}, "source": {"type": "string"},
                                                     "target": {"type": "string"}},
                    "required": ["amount", "source", "target"]},
     "returns": {"type": "object"}, "domain": "finance", "category": "fx", "functionalities": ["convert"]},
    {"name": "calendar.add_event", "description": "Add an event with attendees.",
     "parameters": {"type": "object", "properties": {
         "title": {"type": "string"},
         "attendees": {"type": "array", "items": {"type": "object", "properties": {"name": {"type": "string"}}}}},
         "required": ["title"]},
     "returns": {"type": "object"}, "domain": "productivity", "category": "calendar", "functionalities": ["add"]},
]
BY_NAME = {a["name"]: a for a in APIS}
CITIES = ["Paris", "Rome", "Oslo", "Lima", "Kyoto", "Cairo", "Quito", "Perth"]
CURRENCIES = ["EUR", "USD", "JPY", "GBP"]


def _row(kind: str, messages: list[dict], target_turn: int, tools: list[str], calls: list[dict]) -> dict:
    target_msg = messages[target_turn]
    target = format_calls(target_msg["tool_calls"]) if target_msg.get("tool_calls") else ""
    body = json.dumps([kind, messages, tools], sort_keys=True)
    return {
        "id": hashlib.sha1(body.encode()).hexdigest()[:16], "type": kind, "domain": BY_NAME[tools[0]]["domain"],
        "system": SYSTEM, "tools": json.dumps([BY_NAME[t] for t in tools]), "messages": json.dumps(messages),
        "target_turn": target_turn, "target": target, "calls": json.dumps(calls),
        "apis": sorted({c["name"] for c in calls}), "n_candidates": len(tools), "n_calls": len(calls),
        "n_turns": len(messages), "provenance": "{}",
    }


def _call_turn(calls: list[dict], turn: int, out: list[dict]) -> dict:
    for c in calls:
        out.append({"turn": turn, **c})
    # content deliberately not the call string: normalisation must render it from tool_calls
    return {"role": "assistant", "content": "", "tool_calls": calls,
            "thought": {"tool": calls[0]["name"], "why": "fits the request", "arguments": {}}}


def make_dialog(kind: str, rng: random.Random) -> dict:
    city, city2 = rng.sample(CITIES, 2)
    distractors = [a["name"] for a in APIS]
    if kind == "single":
        days = rng.randint(1, 9)
        calls: list[dict] = []
        msgs = [{"role": "user", "content": f"What is the weather in {city} for the next {days} days?"}]
        msgs.append(_call_turn([{"name": "weather.get_forecast", "arguments": {"city": city, "days": days}}], 1, calls))
        return _row(kind, msgs, 1, _tools("weather.get_forecast", distractors, rng), calls)
    if kind == "parallel":
        amount = rng.randint(5, 500)
        a, b = rng.sample(CURRENCIES, 2)
        calls = []
        msgs = [{"role": "user", "content": f"Convert {amount} {a} to {b}, and {amount} {b} to {a}."}]
        msgs.append(_call_turn([{"name": "fx.convert", "arguments": {"amount": amount, "source": a, "target": b}},
                                {"name": "fx.convert", "arguments": {"amount": amount, "source": b, "target": a}}], 1, calls))
        return _row(kind, msgs, 1, _tools("fx.convert", distractors, rng), calls)
    if kind == "dependent":
        hid = f"H{rng.randint(100, 999)}"
        nights = rng.randint(1, 6)
        calls = []
        msgs = [{"role": "user", "content": f"Find a hotel in {city} on 2024-05-0{rng.randint(1, 9)} and book it for {nights} nights."}]
        checkin = msgs[0]["content"].split(" on ")[1].split(" and")[0]
        msgs.append(_call_turn([{"name": "hotel.search", "arguments": {"city": city, "checkin": checkin}}], 1, calls))
        msgs.append({"role": "tool", "name": "hotel.search", "content": json.dumps({"hotel_id": hid, "price": 120})})
        msgs.append(_call_turn([{"name": "hotel.book", "arguments": {"hotel_id": hid, "nights": nights}}], 3, calls))
        msgs.append({"role": "tool", "name": "hotel.book", "content": json.dumps({"status": "booked"})})
        msgs.append({"role": "assistant", "content": f"Booked hotel {hid} for {nights} nights."})
        return _row(kind, msgs, 3, _tools("hotel.search", distractors, rng, also="hotel.book"), calls)
    if kind == "non_tool":
        msgs = [{"role": "user", "content": f"Write a short poem about {city} and {city2}."},
                {"role": "assistant", "content": "None of the available tools can do that, so I cannot help with it."}]
        return _row(kind, msgs, 1, _tools("fx.convert", distractors, rng), [])
    if kind == "clarification":
        msgs = [{"role": "user", "content": f"Find me a hotel for {rng.randint(2, 9)} guests next week."},
                {"role": "assistant", "content": "Which city should I search in, and on which check-in date?"}]
        return _row(kind, msgs, 1, _tools("hotel.search", distractors, rng), [])
    raise ValueError(kind)


def _tools(gold: str, names: list[str], rng: random.Random, also: str | None = None) -> list[str]:
    others = [n for n in names if n not in (gold, also)]
    picked = [gold] + ([also] if also else []) + rng.sample(others, 2)
    rng.shuffle(picked)
    return picked


def make_dialogs(n: int, seed: int = 0) -> pl.DataFrame:
    """``n`` dialogs cycling through the five types (all five present once n >= 5)."""
    rng = random.Random(seed)
    kinds = ["single", "parallel", "dependent", "non_tool", "clarification"]
    rows = []
    seen = set()
    i = 0
    while len(rows) < n:
        row = make_dialog(kinds[i % 5], rng)
        i += 1
        if row["id"] in seen:
            continue
        seen.add(row["id"])
        rows.append(row)
    return dialogs_frame(rows)
