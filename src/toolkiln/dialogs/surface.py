"""How people say things: surface forms of values and the user's / assistant's sentences (ToolACE arXiv 2409.00920 §3.2).

ToolACE's user agent writes varied, natural requests; its assistant asks for
missing information, declines when no tool fits and summarises results. The
programmatic agents realise the same turns from templates:

* a value's *surface form* (:func:`say`): a date ``2024-05-03`` may be said
  ``May 3rd, 2024`` or ``the 3rd of May 2024``, ``3`` may be ``three``, ``1500``
  may be ``1,500``, names may be quoted, enum members lose their underscores. Each
  form is one the verifier's grounding check maps back to the canonical value
  (:func:`toolkiln.verify.model.grounded`), and the canonical form is recorded in
  the thought whenever the two differ;
* a *mention* puts a value in a phrase fitting its parameter (``in Lisbon``,
  ``for three people``, ``limit it to 5 results``, ``with priority high``);
* a *request* wraps the API's functionality ("get the hourly weather forecast for
  a city") and the mentions in one of several styles (polite question, direct
  command, terse slot list, context first, ...); "further from the description"
  (higher complexity levels) swaps the functionality's verb for a synonym or
  turns it into a need ("I need the ...").
"""

from __future__ import annotations

import datetime as _dt
import random
import re
from dataclasses import dataclass, field
from typing import Any

MONTHS = ["January", "February", "March", "April", "May", "June", "July", "August", "September", "October",
          "November", "December"]
# Only the number words the verifier reads back (toolkiln.verify.model._WORDS).
NUMBER_WORDS = {0: "zero", 1: "one", 2: "two", 3: "three", 4: "four", 5: "five", 6: "six", 7: "seven", 8: "eight",
                9: "nine", 10: "ten", 11: "eleven", 12: "twelve", 20: "twenty", 30: "thirty", 50: "fifty"}
_ISO_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_ISO_DT = re.compile(r"^(\d{4}-\d{2}-\d{2})[Tt ](\d{2}):(\d{2})(?::\d{2}(?:\.\d+)?)?([Zz]|[+-]\d{2}:\d{2})?$")
_YEARISH = re.compile(r"year|season|_id$|code|zip|postal|number|pin")


@dataclass
class Said:
    """One leaf value as the user says it."""

    text: str  # the surface form in the utterance
    canonical: Any = None  # the argument value when the text is not literally it (dates, number words)


@dataclass
class Mention:
    """A value in a phrase: ``in Lisbon``; ``spans`` are the surface forms of its leaf values (for the thought)."""

    param: str
    text: str
    spans: list[Said] = field(default_factory=list)


def param_words(name: str) -> str:
    """``start_date -> start date``, ``userId -> user ID``, ``filters.value -> value``."""
    name = name.split(".")[-1]
    name = re.sub(r"([a-z])([A-Z])", r"\1 \2", name)
    words = [w for w in re.split(r"[_\s]+", name) if w]
    return " ".join("ID" if w.lower() == "id" else "URL" if w.lower() == "url" else w.lower() for w in words) or name


def _ordinal(d: int) -> str:
    return f"{d}{'th' if 10 <= d % 100 <= 20 else {1: 'st', 2: 'nd', 3: 'rd'}.get(d % 10, 'th')}"


def say_date(iso: str, rng: random.Random) -> str:
    d = _dt.date.fromisoformat(iso)
    m = MONTHS[d.month - 1]
    form = rng.randrange(5)
    if form == 0:
        return f"{m} {d.day}, {d.year}"
    if form == 1:
        return f"{m} {_ordinal(d.day)}, {d.year}"
    if form == 2:
        return f"{d.day} {m} {d.year}"
    if form == 3:
        return f"the {_ordinal(d.day)} of {m} {d.year}"
    return f"{m[:3]} {d.day}, {d.year}"


def _say_offset(offset: str | None) -> str:
    """`` UTC`` / `` UTC+05:30`` for an RFC 3339 offset, so a zoned argument stays grounded in what the user said."""
    if not offset:
        return ""
    if offset in ("Z", "z", "+00:00", "-00:00"):
        return " UTC"
    return f" UTC{offset}"


def say(name: str, schema: dict, value: Any, rng: random.Random, *, date_text: float = 0.6,
        number_words: float = 0.3) -> Said:
    """The surface form of a scalar value (see module doc)."""
    if isinstance(value, bool) or value is None:
        return Said(str(value).lower())
    if isinstance(value, int):
        if value in NUMBER_WORDS and 0 < value <= 12 and not _YEARISH.search(name) and rng.random() < number_words:
            return Said(NUMBER_WORDS[value], value)
        if value >= 1000 and not _YEARISH.search(name) and rng.random() < 0.5:
            return Said(f"{value:,}", value)
        return Said(str(value))
    if isinstance(value, float):
        if value.is_integer() and abs(value) < 1e15:
            iv = int(value)
            if iv >= 1000 and rng.random() < 0.5:
                return Said(f"{iv:,}", value)
            return Said(str(iv), value)
        return Said(repr(value))
    if isinstance(value, str):
        if _ISO_DATE.match(value) and rng.random() < date_text:
            try:
                return Said(say_date(value, rng), value)
            except ValueError:
                return Said(value)
        m = _ISO_DT.match(value)
        if m and rng.random() < date_text:
            try:
                return Said(f"{say_date(m.group(1), rng)} at {m.group(2)}:{m.group(3)}{_say_offset(m.group(4))}", value)
            except ValueError:
                return Said(value)
        enum = schema.get("enum") if isinstance(schema, dict) else None
        if isinstance(enum, list) and "_" in value and rng.random() < 0.5:
            return Said(value.replace("_", " "), value)
        if " " in value and not value.endswith((".", "!", "?")) and rng.random() < 0.35:
            q = rng.choice(['"', "'"])
            return Said(f"{q}{value}{q}")
        if value.endswith((".", "!", "?")) and len(value) > 20:
            return Said(f'"{value}"')  # a message body reads as a quotation
        return Said(value)
    return Said(str(value))


def join_words(items: list[str], rng: random.Random | None = None) -> str:
    if not items:
        return ""
    if len(items) == 1:
        return items[0]
    conj = "and" if rng is None or rng.random() < 0.85 else "as well as"
    return ", ".join(items[:-1]) + f" {conj} " + items[-1]


# Connector templates by parameter name ({v} = surface, {pw} = parameter words).
_CONNECTORS: list[tuple[re.Pattern, list[str]]] = [(re.compile(rx), tpls) for rx, tpls in [
    (r"cit(y|ies)$|town|(^|_)location$|(^|_)place$", ["in {v}", "for {v}", "around {v}"]),
    (r"countr", ["in {v}", "for country {v}", "for the country code {v}"]),
    (r"^(start_date|from_date|since|check_in|departure_date|start_time)$", ["from {v}", "starting {v}", "beginning {v}"]),
    (r"^(end_date|to_date|until|check_out|return_date|end_time)$", ["until {v}", "through {v}", "ending {v}"]),
    (r"(^|_)dates?$|(^|_)day$", ["on {v}", "for {v}", "dated {v}"]),
    (r"(_|^)time$|_at$", ["at {v}", "for {v}"]),
    (r"^(limit|max_results|top_n|num_results|page_size|per_page|max_items)$",
     ["limit it to {v} results", "top {v}", "at most {v} results", "just {v} of them", "only {v} results"]),
    (r"^page$", ["page {v}", "on page {v}"]),
    (r"offset", ["skipping the first {v}", "with an offset of {v}"]),
    (r"party_size|guests|people|passengers|attendees|travell?ers", ["for {v} people", "for a party of {v}", "for {v} guests"]),
    (r"^days$", ["for {v} days", "over the next {v} days", "covering {v} days"]),
    (r"^hours$", ["for the next {v} hours", "over {v} hours"]),
    (r"minutes", ["for {v} minutes", "lasting {v} minutes"]),
    (r"_kg$|^weight", ["weighing {v} kg", "of {v} kilograms", "at {v} kg"]),
    (r"_km$|^radius", ["within {v} km", "in a {v} km radius"]),
    (r"_cm$", ["of {v} cm", "at {v} centimetres"]),
    (r"temperature_c$|celsius", ["to {v} degrees Celsius", "at {v}°C"]),
    (r"bright|percent|pct", ["at {v}%", "to {v} percent"]),
    (r"^(max_price|budget)$", ["under {v}", "for at most {v}", "with a budget of {v}"]),
    (r"email", ["to {v}", "at {v}", "for {v}", "email {v}"]),
    (r"phone", ["at {v}", "to {v}", "phone number {v}"]),
    (r"^(query|q|search|keywords?|search_term|term|topic)$", ["about {v}", "matching {v}", "for {v}", "on {v}"]),
    (r"^(text|body|message|content|note|comment|caption)$", ["saying {v}", "with the text {v}", "that says {v}"]),
    (r"^(name|title)$", ["called {v}", "named {v}", "titled {v}"]),
    (r"(^|_)(target_)?language$|locale", ["in {v}", "into {v}", "language {v}"]),
    (r"^(amount|price|budget)$", ["for {v}", "of {v}", "amount {v}"]),
    (r"^currency$", ["in {v}"]),
    (r"from_currency", ["from {v}"]),
    (r"to_currency", ["to {v}", "into {v}"]),
    (r"^(origin|from_location|source_city)$", ["from {v}", "departing {v}"]),
    (r"^(destination|to_location|destination_city)$", ["to {v}", "going to {v}"]),
    (r"^units$", ["in {v} units", "using {v} units"]),
    (r"^format$", ["as {v}", "in {v} format"]),
    (r"^sort_by$|^order_by$", ["sorted by {v}", "ordered by {v}"]),
    (r"^order$", ["in {v} order"]),
    (r"(^|_)(status|state)$", ["with status {v}", "that are {v}", "in state {v}"]),
    (r"priority", ["with {v} priority", "priority {v}"]),
    (r"severity", ["with severity {v}", "at {v} severity"]),
    (r"^(team|artist|player_name|league|venue)$", ["for {v}", "by {v}", "{pw} {v}"]),
    (r"^(tags|labels|hashtags?)$", ["tagged {v}", "with tags {v}"]),
    (r"^(genre|cuisine|diet)$", ["{v}", "{pw} {v}"]),
]]
_GENERIC = ["with {pw} {v}", "{pw} {v}", "using {v} as the {pw}", "where the {pw} is {v}", "with the {pw} set to {v}",
            "and the {pw} should be {v}", "({pw}: {v})"]
_BOOL_TRUE = ["with {pw} turned on", "with {pw} enabled", "and set {pw} to true", "including {pw}"]
_BOOL_FALSE = ["without {pw}", "with {pw} turned off", "and set {pw} to false", "with no {pw}"]
_BOOL_SPECIAL = {
    "include_details": (["with full details", "including all the details"], ["without the extra details"]),
    "dry_run": (["as a dry run only", "just as a dry run"], ["for real, not a dry run"]),
    "notify": (["and notify me", "and send a notification"], ["without notifying anyone", "no notification"]),
}
_OPS = {"eq": "is", "ne": "is not", "lt": "is below", "lte": "is at most", "gt": "is above", "gte": "is at least",
        "contains": "contains", "in": "is one of", "startswith": "starts with"}


def connector(name: str, rng: random.Random, terse: bool = False) -> str:
    if terse:
        return rng.choice(["{pw} {v}", "{pw}: {v}", "{pw} = {v}"])
    low = name.lower()
    for rx, tpls in _CONNECTORS:
        if rx.search(low):
            return rng.choice(tpls)
    return rng.choice(_GENERIC)


def mention(name: str, schema: Any, value: Any, rng: random.Random, *, terse: bool = False, date_text: float = 0.6,
            number_words: float = 0.3) -> Mention:
    """``value`` of parameter ``name`` in a phrase, with the surface form of every leaf."""
    schema = schema if isinstance(schema, dict) else {}
    pw = param_words(name)
    opts = {"date_text": date_text, "number_words": number_words}
    if isinstance(value, bool):
        special = _BOOL_SPECIAL.get(name)
        tpls = (special[0] if value else special[1]) if special and not terse else (_BOOL_TRUE if value else _BOOL_FALSE)
        text = (("{pw}: " + ("yes" if value else "no")) if terse else rng.choice(tpls)).format(pw=pw)
        return Mention(name, text, [Said(text, value)])
    if isinstance(value, list):
        items = schema.get("items") if isinstance(schema.get("items"), dict) else {}
        if value and all(isinstance(x, dict) for x in value):
            parts, spans = [], []
            for x in value:
                m = _object_phrase(x, items, rng, opts, filters=set(x) >= {"field", "value"})
                parts.append(m.text)
                spans.extend(m.spans)
            lead = "where " if all(set(x) >= {"field", "value"} for x in value) else f"with {pw} "
            return Mention(name, lead + join_words(parts), spans)
        saids = [say(name, items, x, rng, **opts) for x in value]
        joined = join_words([s.text for s in saids], rng)
        tpl = connector(name, rng, terse) if len(value) > 1 else connector(name.rstrip("s"), rng, terse)
        if "{pw}" not in tpl and len(value) > 1 and rng.random() < 0.4:
            tpl = "{pw} " + "{v}"
        return Mention(name, tpl.format(v=joined, pw=pw), saids)
    if isinstance(value, dict):
        m = _object_phrase(value, schema, rng, opts, filters=False)
        return Mention(name, f"with {pw} " + m.text if not terse else f"{pw}: " + m.text, m.spans)
    s = say(name, schema, value, rng, **opts)
    tpl = connector(name, rng, terse)
    return Mention(name, tpl.format(v=s.text, pw=pw), [s])


def _object_phrase(value: dict, schema: dict, rng: random.Random, opts: dict, filters: bool) -> Mention:
    props = schema.get("properties") if isinstance(schema.get("properties"), dict) else {}
    if filters:
        f = value.get("field")
        op = value.get("operator", "eq")
        v = say("value", props.get("value", {}), value.get("value"), rng, **opts)
        fs = say("field", props.get("field", {}), f, rng, **opts)
        ops = say("operator", props.get("operator", {}), op, rng, **opts)
        words = _OPS.get(str(op), str(op))
        spans = [fs, v, Said(words, op)]
        extra = [k for k in value if k not in ("field", "operator", "value")]
        text = f"{fs.text} {words} {v.text}"
        for k in extra:
            m = mention(k, props.get(k, {}), value[k], rng, terse=True, **opts)
            text += f" ({m.text})"
            spans.extend(m.spans)
        del ops
        return Mention("", text, spans)
    parts, spans = [], []
    for k, x in value.items():
        m = mention(k, props.get(k, {}), x, rng, terse=True, **opts)
        parts.append(m.text)
        spans.extend(m.spans)
    return Mention("", join_words(parts), spans)


# ----------------------------------------------------------------------------- requests

VERB_SYNONYMS = {
    "get": ["look up", "fetch", "find", "pull up", "check"], "list": ["show me", "give me", "pull up"],
    "search": ["look for", "find", "hunt for"], "find": ["look for", "track down", "search for"],
    "create": ["set up", "make", "add"], "add": ["put in", "create", "include"], "update": ["change", "modify", "edit"],
    "delete": ["remove", "get rid of", "drop"], "remove": ["delete", "take out"], "cancel": ["call off", "stop"],
    "calculate": ["work out", "figure out", "compute"], "compute": ["work out", "figure out"],
    "check": ["verify", "look at", "see"], "send": ["fire off", "shoot over"], "book": ["reserve", "lock in"],
    "convert": ["change", "turn"], "compare": ["weigh up", "contrast"], "estimate": ["work out roughly", "approximate"],
    "track": ["follow", "keep tabs on"], "schedule": ["plan", "set up"], "set": ["configure", "put"],
    "retrieve": ["get", "pull"], "fetch": ["get", "grab"], "translate": ["render", "convert"],
    "analyze": ["look into", "examine"], "generate": ["produce", "put together"], "recommend": ["suggest"],
}
OPENERS = ["", "", "", "Hi!", "Hey,", "Hello.", "Good morning!", "Quick question:", "Okay,", "Hi there,", "So,", "Hey there!"]
CONTEXTS = ["I'm putting together a report.", "This is for a client.", "I'm planning ahead.", "My manager asked about this.",
            "It's a bit urgent.", "I'm double-checking something.", "Trying to get organised today.",
            "Need this for a meeting later.", "Working on a side project."]
CLOSERS = ["", "", "", " Thanks!", " Thank you.", " Cheers.", " Appreciate it.", " Thanks in advance."]
Q_LEADS = ["Can you", "Could you", "Could you please", "Would you", "Can you please", "Would you please"]
IMP_LEADS = ["Please", "Go ahead and", "I need you to", "I'd like you to", "Help me", "Kindly"]
WANT_LEADS = ["I want to", "I'd like to", "I need to", "I'm trying to", "I have to"]
STYLES = ("polite", "direct", "want", "terse", "context", "slots", "casual")
_ARTICLE_NOUN = re.compile(r"\b(a|an|the|one|some|specific|given|particular)\s+([a-z]+)\b")
# parameter -> the noun its value can replace in the functionality text ("for a city" -> "for Lisbon")
SLOT_NOUNS = {"city": "city", "town": "town", "team": "team", "artist": "artist", "league": "league",
              "venue": "venue", "species": "species", "drug_name": "drug", "player_name": "player",
              "address": "address", "symbol": "stock", "title": "movie"}
_CUT = re.compile(r"\s+(for|in|of|by|with|on|from|near|at|to|between|across|within|using|based)\s+")


def functionality(api: dict) -> str:
    """The API's primary functionality as a verb phrase ("get the status of a trademark application")."""
    leaves = api.get("functionalities") or []
    text = leaves[0] if leaves else (api.get("description") or api["name"]).split(".")[0]
    text = text.strip().rstrip(".")
    return text[0].lower() + text[1:] if text else api["name"]


def object_phrase(intent: str) -> str:
    """``get the hourly forecast for a city`` -> ``the hourly forecast``."""
    rest = intent.split(" ", 1)[1] if " " in intent else intent
    return _CUT.split(rest)[0]


def paraphrase(intent: str, rng: random.Random, distance: int) -> str:
    """Distance 0 keeps the functionality's words; 1 swaps its verb; 2+ also turns it into a need."""
    if distance <= 0 or " " not in intent:
        return intent
    verb, rest = intent.split(" ", 1)
    syn = VERB_SYNONYMS.get(verb.lower())
    if syn:
        intent = f"{rng.choice(syn)} {rest}"
    if distance >= 2 and verb.lower() in ("get", "list", "retrieve", "fetch", "find", "search", "check", "calculate"):
        intent = f"{rng.choice(['find out', 'get hold of', 'know'])} {rest}" if rng.random() < 0.5 else intent
    return intent


def fill_slots(intent: str, mentions: dict[str, Mention], values: dict[str, Any]) -> tuple[str, set[str]]:
    """Put entity values into the functionality text: ``for a city`` -> ``for Lisbon``; returns the consumed params."""
    used: set[str] = set()
    for p, noun in SLOT_NOUNS.items():
        if p not in mentions or not isinstance(values.get(p), str):
            continue
        rx = re.compile(rf"\b(a|an|the|one|some|specific|given|particular)\s+{noun}\b")
        if rx.search(intent):
            intent = rx.sub(mentions[p].spans[0].text.replace("\\", "\\\\"), intent, count=1)
            used.add(p)
    return intent, used


def compose_request(parts: list[tuple[str, list[str]]], rng: random.Random, style: str) -> str:
    """One user request from (intent, mention texts) parts; several parts read as one message."""
    terse = style in ("terse", "slots")
    sentences = []
    for i, (intent, ms) in enumerate(parts):
        if style == "slots" and ms:
            sentences.append(_sentence(intent, [], rng, "direct" if i else "polite") + " Details: " + "; ".join(ms) + ".")
            continue
        if i == 0:
            sentences.append(_sentence(intent, ms, rng, style if not terse else "terse"))
        else:
            joiner = rng.choice(["Also,", "And", "Additionally,", "At the same time,", "Plus,", "On top of that,"])
            body = _sentence(intent, ms, rng, rng.choice(["polite", "direct", "want"]) if not terse else "terse")
            sentences.append(f"{joiner} {body[0].lower() + body[1:]}" if joiner != "And" or body[0] != "I"
                             else f"{joiner} {body}")
    text = " ".join(sentences)
    opener = rng.choice(OPENERS)
    if style == "context":
        text = f"{rng.choice(CONTEXTS)} {text}"
    elif opener and style not in ("terse",):
        text = f"{opener} {_after_opener(opener, text)}"
    if style not in ("terse", "casual"):
        text += rng.choice(CLOSERS)
    if style == "casual":
        text = text[0].lower() + text[1:]
        text = text.rstrip(".")
    return text


def _after_opener(opener: str, text: str) -> str:
    # "Okay, could you ..." but "Hi! Could you ..."
    return text[0].lower() + text[1:] if opener.endswith(",") and not text.startswith("I ") else text


def _sentence(intent: str, ms: list[str], rng: random.Random, style: str) -> str:
    tail = (" " + " ".join(ms)) if ms else ""
    if style == "terse":
        body = intent[0].upper() + intent[1:]
        return body + ((", " + ", ".join(ms)) if ms else "") + "."
    if style in ("polite", "context") or (style == "casual" and rng.random() < 0.5):
        return f"{rng.choice(Q_LEADS)} {intent}{tail}?"
    if style == "want":
        return f"{rng.choice(WANT_LEADS)} {intent}{tail}."
    lead = rng.choice(IMP_LEADS)
    return f"{lead} {intent}{tail}."


def follow_up(m: Mention, intent: str, rng: random.Random) -> str:
    """A follow-up that changes one value; it names the task again, since alone "what about X?" says little."""
    obj = object_phrase(intent)
    forms = [f"What about {obj} {m.text}?", f"And can you {intent} {m.text} too?", f"Now {intent} {m.text}, please.",
             f"Great, thanks. Could you also {intent} {m.text}?", f"How about {obj} {m.text}?",
             f"Same thing {m.text}, please: {intent}.", f"Perfect. Now {obj} {m.text}."]
    return rng.choice(forms)


def clarification_answer(m: Mention, said: str, rng: random.Random) -> str:
    pw = param_words(m.param)
    forms = [f"It's {said}.", f"{said[0].upper() + said[1:]}, please.", f"Use {said}.", f"The {pw} is {said}.",
             f"Oh, sorry - {m.text}.", f"Let's go with {said}.", f"{said}", f"Sure, {m.text}."]
    return rng.choice(forms)


def dependent_request(first: tuple[str, list[str]], second: tuple[str, list[str]], link_words: str,
                      rng: random.Random, style: str) -> str:
    (i1, m1), (i2, m2) = first, second
    t1 = (" " + " ".join(m1)) if m1 else ""
    t2 = (" " + " ".join(m2)) if m2 else ""
    forms = [
        f"{rng.choice(Q_LEADS)} {i1}{t1}, and then {i2}{t2} using the {link_words} you get back?",
        f"First {i1}{t1}. Then {i2}{t2} for the {link_words} it returns.",
        f"{rng.choice(WANT_LEADS)} {i2}{t2}, but I don't have the {link_words}; {i1}{t1} first to get it.",
        f"{rng.choice(IMP_LEADS)} {i1}{t1} and use the {link_words} from the result to {i2}{t2}.",
    ]
    text = rng.choice(forms)
    text = text[0].upper() + text[1:]
    opener = rng.choice(OPENERS)
    if style == "context":
        text = f"{rng.choice(CONTEXTS)} {text}"
    elif opener:
        text = f"{opener} {_after_opener(opener, text)}"
    return text + rng.choice(CLOSERS)


# ----------------------------------------------------------------------------- assistant texts

def ask_for(param: str, schema: dict, intent: str, rng: random.Random) -> str:
    pw = param_words(param)
    desc = str(schema.get("description") or "").strip().rstrip(".")
    forms = [f"Sure - which {pw} should I use?", f"Could you tell me the {pw}?",
             f"I can help with that. What {pw} would you like?", f"Happy to help. Which {pw} do you mean?",
             f"Before I do that, I need the {pw}. What is it?"]
    if desc and len(desc) < 90:
        forms.append(f"I need one more detail: {desc[0].lower() + desc[1:]}. What should I use?")
    return rng.choice(forms)


def refuse(intent: str, alternatives: list[str], rng: random.Random) -> str:
    alt = join_words(alternatives[:2]) if alternatives else ""
    forms = [f"I'm sorry, but none of the available tools can {intent}.",
             f"Unfortunately I don't have a tool that can {intent}.",
             f"I can't do that with the tools I have here - none of them can {intent}."]
    text = rng.choice(forms)
    if alt:
        text += rng.choice([f" I can help you {alt} instead.", f" The tools I have can {alt}.",
                            f" What I can do is {alt}."])
    return text


def _facts(obj: Any, rng: random.Random, k: int = 3) -> list[str]:
    out = []
    if isinstance(obj, dict):
        for key, v in obj.items():
            if len(out) >= k:
                break
            if isinstance(v, (str, int, float)) and not isinstance(v, bool) and str(v) and len(str(v)) < 80:
                out.append(f"{param_words(key)} {v}")
            elif isinstance(v, bool):
                out.append(f"{param_words(key)} {'yes' if v else 'no'}")
            elif isinstance(v, list) and v:
                n = len(v)
                first = _facts(v[0], rng, 2) if isinstance(v[0], dict) else [str(v[0])]
                out.append(f"{n} {param_words(key)}" + (f" (first: {', '.join(first)})" if first else ""))
    return out


def summarise(results: list[tuple[str, Any]], rng: random.Random) -> str:
    """A short, factual summary of tool results (never ending in a question: the request is answered)."""
    pieces = []
    for name, res in results:
        facts = _facts(res, rng)
        short = name.split(".")[-1].replace("_", " ")
        pieces.append((short, ", ".join(facts) if facts else "it completed"))
    if len(pieces) == 1:
        forms = ["Here's what I found: {f}.", "Done. The result: {f}.", "All set - {f}.", "The {n} call returned {f}."]
        return rng.choice(forms).format(f=pieces[0][1], n=pieces[0][0])
    body = "; ".join(f"{n}: {f}" for n, f in pieces)
    return rng.choice(["Here are the results - {b}.", "Done. {b}.", "Both are back: {b}."]).format(b=body)
