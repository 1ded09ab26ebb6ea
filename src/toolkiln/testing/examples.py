"""Small, hand-written, valid dialogs of all five types (docs/architecture.md#dialogs).

Not a generator: a fixed set of APIs and templated dialogs, used by the tests,
the rule-layer benchmark and the error-injection evaluation when no simulator
output is at hand. Every dialog built here passes the rule layer; values are
drawn from small banks with an explicit seed so copies differ.
"""

from __future__ import annotations

import hashlib
import json
import random
from typing import Any

import polars as pl

from toolkiln.calls import format_calls
from toolkiln.schema import dialogs_frame

SYSTEM = ("You are a helpful assistant with access to the tools listed below. When a tool is needed, answer with "
          "the call(s) only, in the format [func_name(param=value, ...)]. If no tool fits, say so; if a required "
          "argument is missing, ask for it.")


def _obj(props: dict, required: list[str]) -> dict:
    return {"type": "object", "properties": props, "required": required}


def _ret(props: dict, required: list[str]) -> dict:
    """A returns schema; every field described, as definition clarity asks of returns too."""
    def described(name: str, s: dict) -> dict:
        s = {**s, "description": s.get("description", f"The {name.replace('_', ' ')}.")}
        if isinstance(s.get("items"), dict) and "properties" in s["items"]:
            s["items"] = {**s["items"], "properties": {k: described(k, v) for k, v in s["items"]["properties"].items()}}
        return s
    return _obj({k: described(k, v) for k, v in props.items()}, required)


APIS: list[dict[str, Any]] = [
    {"name": "weather.get_forecast", "description": "Get the daily weather forecast for a city.",
     "parameters": _obj({
         "city": {"type": "string", "description": "City name, e.g. 'Lisbon'."},
         "days": {"type": "integer", "description": "Number of days to forecast.", "minimum": 1, "maximum": 14},
         "units": {"type": "string", "description": "Unit system.", "enum": ["metric", "imperial"], "default": "metric"},
     }, ["city"]),
     "returns": _ret({"city": {"type": "string"}, "forecast": {"type": "array", "items": _obj(
         {"date": {"type": "string", "format": "date"}, "high": {"type": "number"}, "low": {"type": "number"}},
         ["date", "high", "low"])}}, ["city", "forecast"]),
     "domain": "weather", "category": "forecast", "functionalities": ["get the weather forecast"]},
    {"name": "weather.get_air_quality", "description": "Get the current air quality index of a city.",
     "parameters": _obj({"city": {"type": "string", "description": "City name."}}, ["city"]),
     "returns": _ret({"city": {"type": "string"}, "aqi": {"type": "integer"}}, ["city", "aqi"]),
     "domain": "weather", "category": "air quality", "functionalities": ["check air quality"]},
    {"name": "restaurants.book_table", "description": "Book a table at a restaurant for a date and time.",
     "parameters": _obj({
         "restaurant": {"type": "string", "description": "Restaurant name."},
         "date": {"type": "string", "description": "Date (YYYY-MM-DD).", "format": "date"},
         "time": {"type": "string", "description": "Time (HH:MM, 24h).", "pattern": "^\\d{2}:\\d{2}$"},
         "party_size": {"type": "integer", "description": "Number of guests.", "minimum": 1, "maximum": 20},
     }, ["restaurant", "date", "time", "party_size"]),
     "returns": _ret({"booking_id": {"type": "string"}, "status": {"type": "string"}}, ["booking_id", "status"]),
     "domain": "food", "category": "reservations", "functionalities": ["book a table"]},
    {"name": "restaurants.search", "description": "Search restaurants in a city by cuisine.",
     "parameters": _obj({
         "city": {"type": "string", "description": "City to search in."},
         "cuisine": {"type": "string", "description": "Cuisine type.", "enum": ["italian", "japanese", "mexican", "indian"]},
         "max_results": {"type": "integer", "description": "Maximum number of results.", "minimum": 1, "maximum": 50},
     }, ["city", "cuisine"]),
     "returns": _ret({"results": {"type": "array", "items": {"type": "string"}}}, ["results"]),
     "domain": "food", "category": "search", "functionalities": ["find restaurants"]},
    {"name": "email.send_email", "description": "Send an email to a recipient.",
     "parameters": _obj({
         "to": {"type": "string", "description": "Recipient address.", "format": "email"},
         "subject": {"type": "string", "description": "Subject line.", "maxLength": 120},
         "body": {"type": "string", "description": "Message body."},
     }, ["to", "subject", "body"]),
     "returns": _ret({"message_id": {"type": "string"}, "sent": {"type": "boolean"}}, ["message_id", "sent"]),
     "domain": "communication", "category": "email", "functionalities": ["send an email"]},
    {"name": "users.get_user_id", "description": "Look up the numeric id of a user by username.",
     "parameters": _obj({"username": {"type": "string", "description": "The username.",
                                      "pattern": "^[a-z0-9_]{3,20}$"}}, ["username"]),
     "returns": _ret({"user_id": {"type": "integer"}}, ["user_id"]),
     "domain": "shopping", "category": "accounts", "functionalities": ["look up a user"]},
    {"name": "users.get_orders", "description": "List the orders of a user, optionally filtered by status.",
     "parameters": _obj({
         "user_id": {"type": "integer", "description": "Numeric user id.", "minimum": 1},
         "status": {"type": "string", "description": "Order status filter.", "enum": ["open", "shipped", "delivered"]},
     }, ["user_id"]),
     "returns": _ret({"orders": {"type": "array", "items": _obj({"order_id": {"type": "string"},
                                                                  "total": {"type": "number"}}, ["order_id"])}},
                     ["orders"]),
     "domain": "shopping", "category": "orders", "functionalities": ["list orders"]},
    {"name": "finance.convert_currency", "description": "Convert an amount of money between two currencies.",
     "parameters": _obj({
         "amount": {"type": "number", "description": "Amount to convert.", "minimum": 0},
         "from_currency": {"type": "string", "description": "ISO 4217 code.", "pattern": "^[A-Z]{3}$"},
         "to_currency": {"type": "string", "description": "ISO 4217 code.", "pattern": "^[A-Z]{3}$"},
     }, ["amount", "from_currency", "to_currency"]),
     "returns": _ret({"converted": {"type": "number"}, "rate": {"type": "number"}}, ["converted", "rate"]),
     "domain": "finance", "category": "currency", "functionalities": ["convert currency"]},
]
API_BY_NAME = {a["name"]: a for a in APIS}

CITIES = ["Lisbon", "Porto", "Madrid", "Berlin", "Oslo", "Vienna", "Prague", "Dublin", "Athens", "Zurich",
          "Helsinki", "Warsaw", "Budapest", "Seville", "Lyon", "Munich", "Krakow", "Bergen", "Ghent", "Turin"]
RESTAURANTS = ["Casa Nova", "The Green Fork", "Sakura House", "El Toro", "Spice Route", "Blue Door", "Olive Tree"]
NAMES = ["alice", "bob_88", "carla_m", "dmitri", "eve_k", "farid22", "greta", "hugo_b", "ines_p", "jon_snow"]
CURRENCIES = ["EUR", "USD", "GBP", "JPY", "CHF", "SEK", "NOK", "PLN"]
CUISINES = ["italian", "japanese", "mexican", "indian"]
PLACES = ["museum", "park", "gallery", "bookshop", "market", "castle", "garden", "theatre"]


def _tools(rng: random.Random, gold: list[str], n_distractors: int = 2) -> list[dict]:
    others = [a["name"] for a in APIS if a["name"] not in gold]
    names = gold + rng.sample(others, n_distractors)
    rng.shuffle(names)
    return [API_BY_NAME[n] for n in names]


def _call_turn(calls: list[tuple[str, dict]], why: str, sources: dict[str, str] | None = None) -> dict:
    return {"role": "assistant", "content": "",
            "tool_calls": [{"name": n, "arguments": a} for n, a in calls],
            "thought": {"tool": ", ".join(n for n, _ in calls), "why": why,
                        "arguments": sources or {k: "user" for _, a in calls for k in a}}}


def _tool_turn(name: str, result: dict) -> dict:
    return {"role": "tool", "name": name, "content": json.dumps(result, ensure_ascii=False)}


def _row(type_: str, domain: str, tools: list[dict], messages: list[dict], target_turn: int, seed: int) -> dict:
    calls = [{"turn": i, "name": c["name"], "arguments": c["arguments"]}
             for i, m in enumerate(messages) for c in m.get("tool_calls") or []]
    tt = messages[target_turn]
    target = format_calls(tt["tool_calls"]) if tt.get("tool_calls") else ""
    row = {
        "type": type_, "domain": domain, "system": SYSTEM,
        "tools": json.dumps(tools, ensure_ascii=False), "messages": json.dumps(messages, ensure_ascii=False),
        "target_turn": target_turn, "target": target, "calls": json.dumps(calls, ensure_ascii=False),
        "apis": sorted({c["name"] for c in calls}), "n_candidates": len(tools), "n_calls": len(calls),
        "n_turns": len(messages), "provenance": json.dumps({"generator": "testing.examples", "seed": seed}),
    }
    row["id"] = hashlib.sha256((row["messages"] + row["tools"]).encode()).hexdigest()[:16]
    return row


def _single(rng: random.Random, seed: int) -> dict:
    city, days, units = rng.choice(CITIES), rng.randint(1, 14), rng.choice([None, "metric", "imperial"])
    args = {"city": city, "days": days} | ({"units": units} if units else {})
    ask = f" in {units} units" if units else ""
    msgs = [{"role": "user", "content": f"What will the weather be like in {city} over the next {days} days{ask}?"},
            _call_turn([("weather.get_forecast", args)], "The user wants a multi-day forecast for a city."),
            _tool_turn("weather.get_forecast", {"city": city, "forecast": [
                {"date": "2025-06-01", "high": 24.5, "low": 15.0}]}),
            {"role": "assistant", "content": f"In {city} expect highs around 24.5°C and lows near 15°C."}]
    return _row("single", "weather", _tools(rng, ["weather.get_forecast"]), msgs, 1, seed)


def _single_booking(rng: random.Random, seed: int) -> dict:
    place, size = rng.choice(RESTAURANTS), rng.randint(1, 12)
    day, hour = f"2025-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}", f"{rng.randint(12, 22)}:{rng.choice(['00', '30'])}"
    args = {"restaurant": place, "date": day, "time": hour, "party_size": size}
    msgs = [{"role": "user", "content": f"Book a table for {size} at {place} on {day} at {hour}."},
            _call_turn([("restaurants.book_table", args)], "A booking with all four details given."),
            _tool_turn("restaurants.book_table", {"booking_id": f"BK{seed % 100000:05d}", "status": "confirmed"}),
            {"role": "assistant", "content": f"Done: {place}, {day} at {hour} for {size}. Booking BK{seed % 100000:05d}."}]
    return _row("single", "food", _tools(rng, ["restaurants.book_table"]), msgs, 1, seed)


def _single_email(rng: random.Random, seed: int) -> dict:
    who, city = rng.choice(NAMES), rng.choice(CITIES)
    to = f"{who}@example.com"
    args = {"to": to, "subject": f"Trip to {city}", "body": f"See you in {city} next week."}
    msgs = [{"role": "user", "content": f"Email {to} with the subject 'Trip to {city}' saying: See you in {city} next week."},
            _call_turn([("email.send_email", args)], "Recipient, subject and body are all given."),
            _tool_turn("email.send_email", {"message_id": f"m-{seed}", "sent": True}),
            {"role": "assistant", "content": f"Sent to {to}."}]
    return _row("single", "communication", _tools(rng, ["email.send_email"]), msgs, 1, seed)


def _parallel(rng: random.Random, seed: int) -> dict:
    a, b = rng.sample(CITIES, 2)
    cuisine = rng.choice(CUISINES)
    calls = [("restaurants.search", {"city": a, "cuisine": cuisine}),
             ("restaurants.search", {"city": b, "cuisine": cuisine})]
    msgs = [{"role": "user", "content": f"Find me {cuisine} restaurants in {a} and in {b}."},
            _call_turn(calls, "Two independent searches, one per city."),
            _tool_turn("restaurants.search", {"results": ["Casa Nova", "Blue Door"]}),
            _tool_turn("restaurants.search", {"results": ["Olive Tree"]}),
            {"role": "assistant", "content": f"In {a}: Casa Nova and Blue Door. In {b}: Olive Tree."}]
    return _row("parallel", "food", _tools(rng, ["restaurants.search"]), msgs, 1, seed)


def _dependent(rng: random.Random, seed: int) -> dict:
    user = rng.choice(NAMES)
    uid = rng.randint(100, 99999)
    status = rng.choice(["open", "shipped", "delivered"])
    msgs = [{"role": "user", "content": f"Show me the {status} orders of the user {user}."},
            _call_turn([("users.get_user_id", {"username": user})], "Orders need the numeric user id first."),
            _tool_turn("users.get_user_id", {"user_id": uid}),
            _call_turn([("users.get_orders", {"user_id": uid, "status": status})],
                       "Now list the orders with the id just returned.", {"user_id": "tool:users.get_user_id", "status": "user"}),
            _tool_turn("users.get_orders", {"orders": [{"order_id": "A-1001", "total": 42.0}]}),
            {"role": "assistant", "content": f"{user} has one {status} order: A-1001 (42.00)."}]
    return _row("dependent", "shopping", _tools(rng, ["users.get_user_id", "users.get_orders"]), msgs, 3, seed)


def _non_tool(rng: random.Random, seed: int) -> dict:
    city, place, days = rng.choice(CITIES), rng.choice(PLACES), rng.randint(2, 30)
    msgs = [{"role": "user", "content": f"I'm in {city} for {days} days. Can you recommend a good {place} to visit?"},
            {"role": "assistant", "content": "None of the available tools can look up places to visit, so I can't "
                                             "answer that with them."}]
    return _row("non_tool", "weather", _tools(rng, ["weather.get_forecast"], 1), msgs, 1, seed)


def _clarification(rng: random.Random, seed: int) -> dict:
    amount = rng.randint(5, 5000)
    src, dst = rng.sample(CURRENCIES, 2)
    msgs = [{"role": "user", "content": f"Please convert {amount} {src} for me."},
            {"role": "assistant", "content": "Sure - which currency should I convert it to?"},
            {"role": "user", "content": f"To {dst}, please."},
            _call_turn([("finance.convert_currency", {"amount": amount, "from_currency": src, "to_currency": dst})],
                       "All three required arguments are now known."),
            _tool_turn("finance.convert_currency", {"converted": round(amount * 1.1, 2), "rate": 1.1}),
            {"role": "assistant", "content": f"{amount} {src} is {round(amount * 1.1, 2)} {dst}."}]
    return _row("clarification", "finance", _tools(rng, ["finance.convert_currency"]), msgs, 1, seed)


BUILDERS = {"single": (_single, _single_booking, _single_email), "parallel": (_parallel,), "dependent": (_dependent,),
            "non_tool": (_non_tool,), "clarification": (_clarification,)}


def example_dialogs(n: int = 10, *, seed: int = 0, unique: bool = True) -> pl.DataFrame:
    """``n`` valid dialogs cycling through the five types.

    ``unique`` redraws a dialog whose user turns and target repeat an earlier one (so a clean set has no duplicates);
    the value banks are small, so large ``n`` (benchmarks) should pass ``unique=False``.
    """
    rng = random.Random(seed)
    kinds = list(BUILDERS)
    rows, seen = [], set()
    for i in range(n):
        for _ in range(100):
            row = rng.choice(BUILDERS[kinds[i % len(kinds)]])(rng, seed * 1_000_003 + i)
            key = (tuple(m["content"] for m in json.loads(row["messages"]) if m["role"] == "user"), row["target"])
            if not unique or key not in seen:
                break
        else:
            raise ValueError(f"example_dialogs: cannot draw {n} distinct dialogs from the value banks; pass unique=False")
        seen.add(key)
        rows.append(row)
    return dialogs_frame(rows)
