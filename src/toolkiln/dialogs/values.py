"""Argument values that are both executable and plausible (ToolACE arXiv 2409.00920 §3.2).

ToolACE's user agent asks for things a person would ask for, and its assistant's
arguments must satisfy the API's schema. The simulator gets there in two steps:

* a small *vocabulary* keyed by the parameter's name, format and description
  (cities for ``city``, addresses for ``email``, tickers for ``symbol``, ...)
  proposes a plausible value, range-limited for numbers (``limit`` 3-50, not
  8,734,211);
* the schema then has the last word: enums pick a member, formats and patterns
  are generated to match (:mod:`toolkiln.dialogs.regexgen`), ranges, lengths and
  item counts are enforced, and the result is re-checked with the verifier's
  compiled checker (:func:`toolkiln.argcheck.compile_value`), so a value
  that leaves here is one the rule layer accepts.

Every function takes its ``random.Random``; nothing here keeps state between calls.
"""

from __future__ import annotations

import datetime as _dt
import json
import math
import random
import re
from functools import lru_cache
from typing import Any, Callable

from toolkiln.dialogs.regexgen import sample_pattern
from toolkiln.argcheck import compile_value, json_type

# ----------------------------------------------------------------------------- vocabulary

CITIES = ["Lisbon", "Porto", "Madrid", "Barcelona", "Paris", "Lyon", "Berlin", "Munich", "Hamburg", "Vienna", "Zurich",
          "Geneva", "Amsterdam", "Rotterdam", "Brussels", "Dublin", "London", "Manchester", "Edinburgh", "Oslo",
          "Stockholm", "Copenhagen", "Helsinki", "Warsaw", "Prague", "Budapest", "Athens", "Rome", "Milan", "Naples",
          "New York", "Boston", "Chicago", "Seattle", "San Francisco", "Austin", "Denver", "Toronto", "Vancouver",
          "Montreal", "Mexico City", "Buenos Aires", "Sao Paulo", "Tokyo", "Osaka", "Seoul", "Singapore", "Sydney",
          "Melbourne", "Auckland", "Cape Town", "Nairobi", "Istanbul", "Dubai", "Mumbai", "Bangalore"]
COUNTRIES = {"US": "United States", "GB": "United Kingdom", "DE": "Germany", "FR": "France", "ES": "Spain",
             "IT": "Italy", "JP": "Japan", "CN": "China", "IN": "India", "BR": "Brazil", "CA": "Canada",
             "AU": "Australia", "MX": "Mexico", "NL": "Netherlands", "SE": "Sweden", "PT": "Portugal", "NO": "Norway",
             "IE": "Ireland", "KR": "South Korea", "ZA": "South Africa"}
CURRENCIES = ["USD", "EUR", "GBP", "JPY", "CHF", "CAD", "AUD", "CNY", "INR", "BRL", "SEK", "NOK", "MXN"]
LANGUAGES = {"en": "English", "es": "Spanish", "fr": "French", "de": "German", "it": "Italian", "pt": "Portuguese",
             "ja": "Japanese", "zh": "Chinese", "ko": "Korean", "nl": "Dutch", "sv": "Swedish", "pl": "Polish"}
TIMEZONES = ["Europe/Lisbon", "Europe/Berlin", "Europe/London", "America/New_York", "America/Chicago",
             "America/Los_Angeles", "Asia/Tokyo", "Asia/Singapore", "Australia/Sydney", "America/Sao_Paulo"]
FIRST = ["Anna", "Ben", "Carla", "David", "Elena", "Farid", "Grace", "Hugo", "Ines", "Jonas", "Kate", "Liam", "Maya",
         "Noah", "Olivia", "Pedro", "Quinn", "Rosa", "Sam", "Tara", "Umar", "Vera", "Will", "Yuki", "Zoe"]
LAST = ["Berg", "Costa", "Diaz", "Evans", "Fischer", "Garcia", "Hansen", "Ito", "Jensen", "Kim", "Lopez", "Meyer",
        "Novak", "Okafor", "Patel", "Rossi", "Silva", "Tanaka", "Weber", "Young"]
STREETS = ["221B Baker Street, London", "1600 Amphitheatre Parkway, Mountain View", "10 Downing Street, London",
           "Rua Augusta 150, Lisbon", "Friedrichstrasse 43, Berlin", "350 Fifth Avenue, New York",
           "12 Rue de Rivoli, Paris", "Calle Mayor 5, Madrid", "Karl Johans gate 22, Oslo", "88 Queen Street, Auckland"]
COMPANIES = ["Acme Corp", "Globex", "Initech", "Umbrella Labs", "Northwind Traders", "Contoso", "Blue Harbor",
             "Vertex Analytics", "Greenleaf Foods", "Stellar Logistics"]
TEAMS = ["Arsenal", "Benfica", "Real Madrid", "Bayern Munich", "Ajax", "Celtic", "Boston Celtics", "Chicago Bulls",
         "New York Yankees", "Toronto Maple Leafs"]
LEAGUES = ["Premier League", "La Liga", "Serie A", "Bundesliga", "NBA", "NHL", "MLB", "Champions League"]
ARTISTS = ["Taylor Swift", "Miles Davis", "Adele", "Radiohead", "Beyonce", "Ludovico Einaudi", "Daft Punk",
           "Norah Jones", "Coldplay", "Billie Eilish"]
TITLES = ["The Matrix", "Inception", "Pride and Prejudice", "The Great Gatsby", "Blade Runner", "Spirited Away",
          "The Hobbit", "Dune", "Interstellar", "Amelie", "Moby Dick", "The Godfather"]
PROJECTS = ["Project Phoenix", "Q3 launch plan", "Spring campaign", "Team offsite", "Budget review", "Onboarding flow",
            "Data migration", "Website refresh", "Customer survey", "Quarterly report", "Summer sale", "Holiday party"]
JOBS = ["data engineer", "product manager", "registered nurse", "frontend developer", "sales associate",
        "mechanical engineer", "graphic designer", "accountant", "UX researcher", "site reliability engineer"]
TOPICS = ["renewable energy", "machine learning", "electric cars", "remote work", "climate policy", "space exploration",
          "healthy eating", "cybersecurity", "interest rates", "urban gardening", "marathon training", "jazz history"]
SENTENCES = ["Running ten minutes late, see you soon.", "Please review the attached draft before Friday.",
             "Thanks for your help with the move.", "The meeting is moved to the main conference room.",
             "Happy birthday, hope you have a great day!", "Can we reschedule our call to next week?",
             "The package arrived damaged.", "Great job on the launch, team.", "Reminder to submit your timesheet.",
             "Dinner is at eight, bring dessert."]
REASONS = ["no longer needed", "duplicate request", "customer asked for it", "wrong item ordered", "moved to a new plan",
           "security concern", "scheduling conflict", "budget cut"]
TAGS = ["urgent", "work", "personal", "travel", "finance", "family", "review", "archive", "summer", "priority"]
FOODS = ["tomato", "basil", "garlic", "chicken", "rice", "lentils", "spinach", "mushrooms", "lemon", "chickpeas"]
SYMPTOMS = ["headache", "fever", "cough", "sore throat", "fatigue", "nausea", "back pain", "dizziness"]
DRUGS = ["ibuprofen", "amoxicillin", "metformin", "lisinopril", "atorvastatin", "paracetamol", "omeprazole"]
SPECIES = ["red fox", "bald eagle", "monarch butterfly", "honey bee", "gray wolf", "sea otter", "barn owl"]
SPECIALTIES = ["cardiology", "dermatology", "pediatrics", "orthopedics", "neurology", "oncology", "psychiatry"]
REGIONS = ["us-east-1", "eu-west-1", "ap-southeast-2", "eu-central-1", "us-west-2"]
JURISDICTIONS = ["US-CA", "US-NY", "GB", "DE", "FR", "EU", "US-TX", "CA-ON"]
DATASETS = ["sales_2024", "web_traffic", "customer_churn", "inventory_daily", "support_tickets", "sensor_readings"]
STATUSES = ["active", "pending", "completed", "cancelled", "open", "closed", "archived"]
PRIORITIES = ["low", "medium", "high", "urgent"]
SEVERITIES = ["low", "medium", "high", "critical"]
PLATFORMS = ["ios", "android", "web", "windows", "macos", "linux"]
FIELDS = ["name", "price", "created_at", "status", "rating", "date", "title", "score", "category", "updated_at"]
HOSTS = ["example.org", "shop.example.com", "api.example.net", "docs.example.io", "mail.example.co.uk"]
TICKERS = ["AAPL", "MSFT", "GOOGL", "AMZN", "TSLA", "NVDA", "META", "IBM", "SAP", "ASML"]
CRYPTO = ["BTC", "ETH", "SOL", "ADA", "DOT", "XRP", "LTC", "USDC"]
AIRPORTS = ["LIS", "OPO", "MAD", "CDG", "LHR", "FRA", "AMS", "JFK", "SFO", "NRT", "SIN", "DXB"]
COLORS = ["#1E90FF", "#FF6347", "#2E8B57", "#FFD700", "#8A2BE2", "#333333"]
WORDS = ["alpha", "harbor", "summit", "river", "orchid", "falcon", "meadow", "atlas", "cobalt", "ember", "willow",
         "granite", "aurora", "cedar", "lumen", "nova"]


def _person(rng: random.Random) -> str:
    return f"{rng.choice(FIRST)} {rng.choice(LAST)}"


def _email(rng: random.Random) -> str:
    return f"{rng.choice(FIRST).lower()}.{rng.choice(LAST).lower()}@{rng.choice(['example.com', 'example.org', 'mail.example.net'])}"


def _url(rng: random.Random, name: str = "") -> str:
    host = rng.choice(HOSTS)
    if "image" in name or "photo" in name or "avatar" in name:
        return f"https://{host}/images/{rng.choice(WORDS)}-{rng.randint(1, 999)}.jpg"
    if "callback" in name or "webhook" in name:
        return f"https://{host}/hooks/{rng.choice(WORDS)}"
    return f"https://{host}/{rng.choice(WORDS)}/{rng.randint(10, 9999)}"


def _id_like(name: str, rng: random.Random) -> str:
    stem = re.sub(r"(_?ids?|_?number|_?code|identifier|_key|_ref)$", "", name).strip("_") or "id"
    word = stem.split("_")[-1] or "id"
    style = rng.randrange(4)
    if style == 0:
        return f"{word[:3].upper()}-{rng.randint(10000, 999999)}"
    if style == 1:
        return f"{word[:5].lower()}_{rng.randint(1000, 99999)}"
    if style == 2:
        return str(rng.randint(100000, 99999999))
    return f"{word[:2].upper()}{rng.randint(1000, 9999)}{rng.choice('ABCDEFGHJKLMNPQRSTUVWXYZ')}"


def _date(rng: random.Random) -> str:
    d = _dt.date(2024, 1, 1) + _dt.timedelta(days=rng.randrange(0, 760))
    return d.isoformat()


# UTC offsets a user might state; "Z" dominates because most APIs document UTC.
_OFFSETS = ("Z", "Z", "Z", "+01:00", "+02:00", "-05:00", "-08:00", "+05:30", "+09:00")


def _datetime(rng: random.Random, *, offset: bool = False) -> str:
    """``YYYY-MM-DDTHH:MM:00``; with ``offset`` an RFC 3339 date-time (``format: date-time`` requires one)."""
    base = f"{_date(rng)}T{rng.choice([8, 9, 10, 11, 13, 14, 15, 16, 17, 18, 19, 20]):02d}:{rng.choice([0, 15, 30, 45]):02d}:00"
    return base + rng.choice(_OFFSETS) if offset else base


# (name regex, proposer). The first matching rule proposes; the schema has the last word.
Proposer = Callable[[random.Random, str], Any]
_STRING_RULES: list[tuple[str, Proposer]] = [
    (r"email", lambda r, n: _email(r)),
    (r"phone|mobile|sms", lambda r, n: f"+{r.choice(['1', '44', '49', '351', '33'])}{r.randint(200000000, 999999999)}"),
    (r"(^|_)(url|uri|link|webhook)s?$|_url$|callback", lambda r, n: _url(r, n)),
    (r"^(domain|domain_name|hostname|host)$", lambda r, n: r.choice(HOSTS)),
    (r"(^|_)ip(_address)?$", lambda r, n: f"{r.choice([10, 172, 192, 203])}.{r.randint(0, 255)}.{r.randint(0, 255)}.{r.randint(1, 254)}"),
    (r"timezone|time_zone|(^|_)tz$", lambda r, n: r.choice(TIMEZONES)),
    (r"(^|_)(from_|to_|base_|target_)?currency$|currencies", lambda r, n: r.choice(CURRENCIES)),
    (r"(^|_)(target_|source_)?(language|lang|locale)s?$", lambda r, n: r.choice(list(LANGUAGES))),
    (r"countr", lambda r, n: r.choice(list(COUNTRIES))),
    (r"cit(y|ies)$|town|(^|_)location$|from_location|to_location|(^|_)place$", lambda r, n: r.choice(CITIES)),
    (r"wallet", lambda r, n: "0x" + "".join(r.choice("0123456789abcdef") for _ in range(40))),
    (r"(^|_)(file_)?hash|sha256|checksum", lambda r, n: "".join(r.choice("0123456789abcdef") for _ in range(64))),
    (r"(^|_)cve", lambda r, n: f"CVE-{r.randint(2015, 2024)}-{r.randint(1000, 49999)}"),
    (r"(^|_)diets?$", lambda r, n: r.choice(["vegetarian", "vegan", "gluten_free", "keto", "halal"])),
    (r"address", lambda r, n: r.choice(STREETS)),
    (r"postal|zip", lambda r, n: r.choice(["1100-148", "10115", "SW1A 1AA", "75001", "94105", "2000", "0150"])),
    (r"(^|_)(origin|destination|airport)s?$", lambda r, n: r.choice(AIRPORTS)),
    (r"(^|_)(symbol|ticker)s?$", lambda r, n: r.choice(TICKERS)),
    (r"(^|_)(asset|coin|token_symbol)s?$", lambda r, n: r.choice(CRYPTO)),
    (r"(start|end|check_in|check_out|due|birth|from|to|event|departure|return)_?dates?$|(^|_)dates?$|(^|_)(since|until|day)$",
     lambda r, n: _date(r)),
    (r"(_|^)(time|datetime|timestamp)s?$|_at$", lambda r, n: _datetime(r)),
    (r"username|user_name|handle|login", lambda r, n: f"{r.choice(FIRST).lower()}_{r.choice(LAST).lower()}{r.randint(1, 99)}"),
    (r"player|author|contact|patient_name|full_name|person|driver|recipient_name|assignee|owner", lambda r, n: _person(r)),
    (r"artist|band|composer|singer", lambda r, n: r.choice(ARTISTS)),
    (r"(^|_)team", lambda r, n: r.choice(TEAMS)),
    (r"league|competition|tournament", lambda r, n: r.choice(LEAGUES)),
    (r"venue|stadium", lambda r, n: r.choice(["Wembley Stadium", "Madison Square Garden", "Royal Albert Hall",
                                                "Estadio da Luz", "Sydney Opera House"])),
    (r"show|podcast|series", lambda r, n: r.choice(["The Daily", "Planet Money", "Serial", "Radiolab", "Hardcore History"])),
    (r"job_title|position|(^|_)role$|occupation", lambda r, n: r.choice(JOBS)),
    (r"company|employer|organi[sz]ation|vendor|merchant|brand", lambda r, n: r.choice(COMPANIES)),
    (r"subject|headline", lambda r, n: r.choice(["Quarterly update", "Trip to Lisbon", "Invoice 2024-117", "Welcome aboard",
                                                   "Schedule change"])),
    (r"(^|_)(text|message|body|content|comment|note|caption|bio|summary|description|prompt|review)s?$",
     lambda r, n: r.choice(SENTENCES)),
    (r"reason", lambda r, n: r.choice(REASONS)),
    (r"query|search|keyword|(^|_)q$|(^|_)term|topic", lambda r, n: r.choice(TOPICS)),
    (r"hashtag", lambda r, n: r.choice(["travel", "foodie", "tbt", "ai", "fitness", "photography"])),
    (r"tag|label|(^|_)categor", lambda r, n: r.choice(TAGS)),
    (r"genre", lambda r, n: r.choice(["jazz", "rock", "comedy", "drama", "sci-fi", "documentary", "pop", "classical"])),
    (r"cuisine", lambda r, n: r.choice(["italian", "japanese", "mexican", "indian", "thai", "french"])),
    (r"ingredient|food|dish", lambda r, n: r.choice(FOODS)),
    (r"symptom", lambda r, n: r.choice(SYMPTOMS)),
    (r"drug|medication|medicine", lambda r, n: r.choice(DRUGS)),
    (r"species|animal|plant", lambda r, n: r.choice(SPECIES)),
    (r"specialt", lambda r, n: r.choice(SPECIALTIES)),
    (r"(^|_)region", lambda r, n: r.choice(REGIONS)),
    (r"jurisdiction", lambda r, n: r.choice(JURISDICTIONS)),
    (r"dataset|table", lambda r, n: r.choice(DATASETS)),
    (r"bucket", lambda r, n: f"{r.choice(WORDS)}-{r.choice(['logs', 'backups', 'assets', 'exports'])}"),
    (r"repositor|(^|_)repo", lambda r, n: f"{r.choice(['acme', 'octo', 'northwind', 'globex'])}/{r.choice(WORDS)}"),
    (r"branch", lambda r, n: r.choice(["main", "develop", "release-2.1", "feature/login", "hotfix-42"])),
    (r"isbn", lambda r, n: f"978{r.randint(1000000000, 9999999999)}"),
    (r"(^|_)doi", lambda r, n: f"10.{r.randint(1000, 9999)}/{r.choice(WORDS)}.{r.randint(100, 999)}"),
    (r"(^|_)vin", lambda r, n: "".join(r.choice("ABCDEFGHJKLMNPRSTUVWXYZ0123456789") for _ in range(17))),
    (r"colou?r", lambda r, n: r.choice(COLORS)),
    (r"(^|_)(status|state)(es)?$", lambda r, n: r.choice(STATUSES)),
    (r"title|(^|_)name$|project|campaign_name|playlist_name|event_name", lambda r, n: r.choice(TITLES if "title" in n else PROJECTS)),
    (r"priorit", lambda r, n: r.choice(PRIORITIES)),
    (r"severit", lambda r, n: r.choice(SEVERITIES)),
    (r"platform|(^|_)os$", lambda r, n: r.choice(PLATFORMS)),
    (r"sort|order_by|(^|_)fields?$|column|metric|attribute", lambda r, n: r.choice(FIELDS)),
    (r"(^|_)order$|direction", lambda r, n: r.choice(["asc", "desc"])),
    (r"(^|_)(format|file_type)$", lambda r, n: r.choice(["pdf", "csv", "json", "xlsx"])),
    (r"(^|_)mode$", lambda r, n: r.choice(["driving", "walking", "transit", "standard", "express"])),
    (r"(^|_)units?$", lambda r, n: r.choice(["metric", "imperial"])),
    (r"source|provider|outlet|channel$", lambda r, n: r.choice(["reuters", "bbc", "internal", "partner-feed", "web"])),
    (r"carrier|courier", lambda r, n: r.choice(["ups", "fedex", "dhl", "usps"])),
    (r"flight", lambda r, n: f"{r.choice(['TP', 'BA', 'LH', 'AF', 'UA'])}{r.randint(100, 2999)}"),
    (r"(_id|_ids|identifier|_number|_code|_key|_ref|_sku)$|^(id|sku|code)$", lambda r, n: _id_like(n, r)),
    (r"(^|_)(operator|op)$", lambda r, n: r.choice(["eq", "gt", "lt", "contains"])),
    (r"(^|_)value$", lambda r, n: r.choice(STATUSES + ["2024", "premium", "blue"])),
]
_STRING_RULES_RX = [(re.compile(rx), f) for rx, f in _STRING_RULES]

# (name regex, (low, high), step or choices) for integers; the schema's range is intersected with it.
_INT_RULES: list[tuple[str, Any]] = [
    (r"limit|max_results|page_size|per_page|batch_size|(^|_)top(_n|_k)?$|(^|_)count$|num_results|max_items", [3, 5, 10, 20, 25, 50]),
    (r"(^|_)page$", (1, 10)),
    (r"offset|skip", [0, 10, 20, 50, 100]),
    (r"party|guest|passenger|adult|people|person|seat|ticket|attendee|traveller|traveler|players?$", (1, 10)),
    (r"child|kid|infant", (0, 3)),
    (r"quantit|units|items|copies", (1, 12)),
    (r"(^|_)days?$|nights|duration_days", (1, 14)),
    (r"(^|_)hours?$", (1, 48)),
    (r"minute", [10, 15, 20, 30, 45, 60, 90, 120]),
    (r"seconds|timeout|ttl", [10, 30, 60, 300, 600]),
    (r"week", (1, 8)),
    (r"month", (1, 12)),
    (r"(^|_)(year|season)s?$|_year$", (2015, 2025)),
    (r"(^|_)age$", (18, 80)),
    (r"bedroom|bathroom|room|floor", (1, 5)),
    (r"width|height|resolution|pixels", [320, 480, 640, 800, 1024, 1080, 1280, 1920]),
    (r"bright|volume|percent|pct|battery|humidity", (0, 100, 5)),
    (r"rating|stars|score", (1, 5)),
    (r"experience|term_years|years", (1, 30)),
    (r"priority|level|tier", (1, 5)),
    (r"radius|distance|km|miles", (1, 50)),
    (r"temperature|temp", (16, 28)),
    (r"calorie|kcal", [200, 350, 500, 750, 1200, 2000]),
    (r"steps", [2000, 5000, 8000, 10000, 12000]),
    (r"amount|price|cost|budget|salary|income|fee", [20, 50, 100, 250, 500, 1200, 1500, 2500, 5000]),
    (r"max|min|threshold", (1, 100)),
]
_INT_RULES_RX = [(re.compile(rx), spec) for rx, spec in _INT_RULES]

_NUM_RULES: list[tuple[str, tuple[float, float, int]]] = [
    (r"latitude|(^|_)lat$", (-60.0, 70.0, 4)),
    (r"longitude|(^|_)(lon|lng)$", (-120.0, 150.0, 4)),
    (r"amount|price|cost|budget|salary|income|fee|total|balance|value", (5.0, 2500.0, 2)),
    (r"interest|(^|_)rate$|apr|percent|pct|yield", (0.5, 12.0, 2)),
    (r"rating|stars", (1.0, 5.0, 1)),
    (r"radius|distance|km|miles", (0.5, 50.0, 1)),
    (r"weight|kg|mass", (0.5, 80.0, 1)),
    (r"height|_cm$|length", (140.0, 200.0, 1)),
    (r"temperature|temp|celsius", (-5.0, 35.0, 1)),
    (r"score|probability|confidence|ratio|threshold", (0.0, 1.0, 2)),
    (r"speed", (5.0, 120.0, 1)),
]
_NUM_RULES_RX = [(re.compile(rx), spec) for rx, spec in _NUM_RULES]


# ----------------------------------------------------------------------------- schema helpers

@lru_cache(maxsize=65536)
def _checker_for(key: str):
    return compile_value(json.loads(key))


def conforms(value: Any, schema: dict) -> bool:
    """Does ``value`` satisfy ``schema`` by the verifier's own executability rules?"""
    problems: list = []
    _checker_for(json.dumps(schema, sort_keys=True))(value, "v", problems)
    return not problems


def problems_of(value: Any, schema: dict) -> list[str]:
    out: list = []
    _checker_for(json.dumps(schema, sort_keys=True))(value, "result", out)
    return [reason for _check, reason in out]


def result_problems(value: Any, returns: dict) -> list[str]:
    """Why a tool result does not fit its API's ``returns`` schema: schema violations, plus (stricter than JSON
    Schema, as a simulated result should look like the documented one) undeclared or missing top-level fields."""
    probs = problems_of(value, returns)
    props = returns.get("properties") if isinstance(returns, dict) else None
    if isinstance(value, dict) and isinstance(props, dict) and props:
        extra = sorted(set(value) - set(props))
        if extra:
            probs.append(f"result: undeclared fields {extra[:5]} (declared: {sorted(props)[:8]})")
        if not set(value) & set(props):
            probs.append(f"result: none of the declared fields {sorted(props)[:8]}")
    return probs


def singular(name: str) -> str:
    """``cities -> city``, ``check_ins -> check_in``, ``bedroomses -> bedrooms`` (synth's naive plural)."""
    if name.endswith("ies") and len(name) > 4:
        return name[:-3] + "y"
    if name.endswith("ses") and name[:-2].endswith("s"):
        return name[:-2]
    for suffix in ("ches", "shes", "xes", "sses", "uses"):
        if name.endswith(suffix):
            return name[:-2]
    if name.endswith("s") and not name.endswith(("ss", "us", "is")):
        return name[:-1]
    return name


def _format_value(fmt: str, rng: random.Random, name: str) -> str | None:
    if fmt == "date":
        return _date(rng)
    if fmt == "date-time":
        # RFC 3339 (what JSON Schema's date-time means) requires a UTC offset; the user states it.
        return _datetime(rng, offset=True)
    if fmt == "time":
        return f"{rng.randint(7, 21):02d}:{rng.choice([0, 15, 30, 45]):02d}"
    if fmt == "email":
        return _email(rng)
    if fmt in ("uri", "url"):
        return _url(rng, name)
    if fmt == "uuid":
        return "%08x-%04x-4%03x-%04x-%012x" % (rng.getrandbits(32), rng.getrandbits(16), rng.getrandbits(12),
                                                0x8000 | rng.getrandbits(14), rng.getrandbits(48))
    if fmt == "ipv4":
        return f"{rng.choice([10, 172, 192, 203])}.{rng.randint(0, 255)}.{rng.randint(0, 255)}.{rng.randint(1, 254)}"
    if fmt == "ipv6":
        return "2001:db8:" + ":".join(f"{rng.getrandbits(16):x}" for _ in range(6))
    if fmt == "hostname":
        return rng.choice(HOSTS)
    if fmt == "duration":
        return rng.choice(["PT30M", "PT1H", "PT2H30M", "P1D", "P7D", "PT45M"])
    if fmt == "phone":
        return f"+{rng.choice(['1', '44', '49', '351'])}{rng.randint(200000000, 999999999)}"
    if fmt == "currency":
        return rng.choice(CURRENCIES)
    if fmt == "country-code":
        return rng.choice(list(COUNTRIES))
    if fmt == "language-code":
        return rng.choice(list(LANGUAGES))
    if fmt == "color":
        return rng.choice(COLORS)
    return None


_EXAMPLE_RX = re.compile(r"e\.g\.,?\s*['\"]([^'\"]{1,40})['\"]")


def _string_from_description(desc: str, rng: random.Random) -> str | None:
    d = desc.lower()
    if "iso 4217" in d:
        return rng.choice(CURRENCIES)
    if "iso 3166" in d or "country code" in d:
        return rng.choice(list(COUNTRIES))
    if "iso 639" in d or "language code" in d:
        return rng.choice(list(LANGUAGES))
    if "yyyy-mm-dd" in d and "t" not in d.split("yyyy-mm-dd")[1][:2]:
        return _date(rng)
    m = _EXAMPLE_RX.search(desc)
    if m and rng.random() < 0.3:
        return m.group(1)
    return None


def _fit_length(s: str, schema: dict, rng: random.Random) -> str:
    lo, hi = schema.get("minLength"), schema.get("maxLength")
    if isinstance(hi, int) and hi >= 1 and len(s) > hi:
        s = s[:hi].rstrip() or s[:hi]
    if isinstance(lo, int) and len(s) < lo:
        s = s + "".join(rng.choice("abcdefghjkmnpqrstuvwxyz") for _ in range(lo - len(s)))
    return s


def gen_string(name: str, schema: dict, rng: random.Random) -> str:
    fmt = schema.get("format")
    pattern = schema.get("pattern")
    cands: list[str] = []
    if isinstance(fmt, str):
        v = _format_value(fmt, rng, name)
        if v is not None:
            cands.append(v)
    low = name.lower()
    for rx, f in _STRING_RULES_RX:
        if rx.search(low):
            cands.append(f(rng, low))
            break
    desc = schema.get("description")
    if isinstance(desc, str):
        v = _string_from_description(desc, rng)
        if v is not None:
            cands.insert(0 if not isinstance(fmt, str) else 1, v)
    for c in cands:
        c = _fit_length(c, schema, rng)
        if conforms(c, schema):
            return c
    if isinstance(pattern, str):
        v = sample_pattern(pattern, rng)
        if v is not None:
            return v
    words = [w for w in re.split(r"[_\W]+", low) if w]
    base = f"{rng.choice(WORDS)} {words[-1]}" if words else rng.choice(WORDS)
    return _fit_length(base, schema, rng)


def _bounds(schema: dict) -> tuple[float | None, float | None]:
    lo = schema.get("minimum")
    hi = schema.get("maximum")
    if isinstance(schema.get("exclusiveMinimum"), (int, float)) and not isinstance(schema.get("exclusiveMinimum"), bool):
        lo = schema["exclusiveMinimum"] + (1 if json_type(schema) == "integer" else 1e-6) if lo is None else lo
    if isinstance(schema.get("exclusiveMaximum"), (int, float)) and not isinstance(schema.get("exclusiveMaximum"), bool):
        hi = schema["exclusiveMaximum"] - (1 if json_type(schema) == "integer" else 1e-6) if hi is None else hi
    lo = lo if isinstance(lo, (int, float)) and not isinstance(lo, bool) else None
    hi = hi if isinstance(hi, (int, float)) and not isinstance(hi, bool) else None
    return lo, hi


def gen_integer(name: str, schema: dict, rng: random.Random) -> int:
    lo, hi = _bounds(schema)
    lo_i = math.ceil(lo) if lo is not None else None
    hi_i = math.floor(hi) if hi is not None else None
    low = name.lower()
    for rx, spec in _INT_RULES_RX:
        if rx.search(low):
            if isinstance(spec, list):
                ok = [v for v in spec if (lo_i is None or v >= lo_i) and (hi_i is None or v <= hi_i)]
                if ok:
                    return rng.choice(ok)
            else:
                a, b = spec[0], spec[1]
                step = spec[2] if len(spec) > 2 else 1
                a2 = max(a, lo_i) if lo_i is not None else a
                b2 = min(b, hi_i) if hi_i is not None else b
                if a2 <= b2:
                    v = rng.randint(a2, b2)
                    v = v - (v - a2) % step if step > 1 else v
                    return v
            break
    a = lo_i if lo_i is not None else (1 if hi_i is None or hi_i >= 1 else hi_i - 10)
    b = hi_i if hi_i is not None else a + 99
    b = min(b, a + 999)
    return rng.randint(a, b)


def gen_number(name: str, schema: dict, rng: random.Random) -> float:
    lo, hi = _bounds(schema)
    low = name.lower()
    a, b, dec = 0.0, 100.0, 1
    for rx, spec in _NUM_RULES_RX:
        if rx.search(low):
            a, b, dec = spec
            break
    a2 = max(a, lo) if lo is not None else a
    b2 = min(b, hi) if hi is not None else b
    if a2 > b2:
        a2 = lo if lo is not None else (hi - 100 if hi is not None else 0.0)
        b2 = hi if hi is not None else a2 + 100
    # Round numbers are what people say; one in three keeps the decimals.
    if rng.random() < 0.45 and math.floor(b2) >= math.ceil(a2):
        v = float(rng.randint(math.ceil(a2), math.floor(b2)))
    else:
        v = round(rng.uniform(a2, b2), dec)
        v = min(max(v, a2), b2)
    mult = schema.get("multipleOf")
    if isinstance(mult, (int, float)) and not isinstance(mult, bool) and mult > 0:
        v = round(round(v / mult) * mult, 6)
    return float(v)


def gen_value(name: str, schema: Any, rng: random.Random, *, optional_share: float = 0.5, depth: int = 0) -> Any:
    """A plausible value for parameter ``name`` that satisfies ``schema`` (best effort for exotic schemas)."""
    if not isinstance(schema, dict):
        return rng.choice(WORDS)
    enum = schema.get("enum")
    if isinstance(enum, list) and enum:
        return rng.choice(enum)
    if "const" in schema:
        return schema["const"]
    t = json_type(schema)
    if t is None:
        t = "object" if "properties" in schema else "array" if "items" in schema else "string"
    if t == "string":
        return gen_string(name, schema, rng)
    if t == "integer":
        return gen_integer(name, schema, rng)
    if t == "number":
        return gen_number(name, schema, rng)
    if t == "boolean":
        return rng.random() < 0.6
    if t == "null":
        return None
    if t == "array":
        items = schema.get("items") if isinstance(schema.get("items"), dict) else {"type": "string"}
        lo = schema.get("minItems") if isinstance(schema.get("minItems"), int) else 1
        hi = schema.get("maxItems") if isinstance(schema.get("maxItems"), int) else 3
        lo, hi = max(lo, 1 if hi >= 1 else 0), max(min(hi, 3, max(lo, 1) + 2), max(lo, 0))
        k = rng.randint(min(lo, hi), hi)
        out: list = []
        item_name = singular(name)
        for _ in range(k * 4):
            if len(out) >= k:
                break
            v = gen_value(item_name, items, rng, optional_share=optional_share, depth=depth + 1)
            if v not in out:  # people list distinct things; also satisfies uniqueItems
                out.append(v)
        while len(out) < lo:
            out.append(gen_value(item_name, items, rng, optional_share=optional_share, depth=depth + 1))
        return out
    if t == "object":
        props = schema.get("properties") if isinstance(schema.get("properties"), dict) else {}
        req = [r for r in schema.get("required") or [] if r in props]
        out_d: dict = {}
        for k, s in props.items():
            if k in req or rng.random() < optional_share or (not req and not out_d and k == list(props)[-1]):
                out_d[k] = gen_value(k, s, rng, optional_share=optional_share, depth=depth + 1)
        return out_d
    return rng.choice(WORDS)


def pair_fix(arguments: dict) -> dict:
    """Make paired arguments coherent: an end date after its start date, a check-out after check-in, min <= max."""
    pairs = [("start_date", "end_date"), ("check_in", "check_out"), ("from_date", "to_date"), ("start_time", "end_time"),
             ("departure_date", "return_date"), ("since", "until")]
    for a, b in pairs:
        va, vb = arguments.get(a), arguments.get(b)
        if isinstance(va, str) and isinstance(vb, str) and len(va) == len(vb) and va > vb:
            arguments[a], arguments[b] = vb, va
        if isinstance(va, str) and va == vb and len(va) == 10:
            try:
                arguments[b] = (_dt.date.fromisoformat(va) + _dt.timedelta(days=3)).isoformat()
            except ValueError:
                pass
    for k in list(arguments):
        if k.startswith("min_") and f"max_{k[4:]}" in arguments:
            lo, hi = arguments[k], arguments[f"max_{k[4:]}"]
            if isinstance(lo, (int, float)) and isinstance(hi, (int, float)) and not isinstance(lo, bool) and lo > hi:
                arguments[k], arguments[f"max_{k[4:]}"] = hi, lo
    return arguments
