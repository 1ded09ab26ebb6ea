"""Test fixture: a small, realistic API pool: 21 APIs in 3 domains (canonical ``schema.py`` rows).

Parameter types cover what the real pool holds: strings with enum / pattern / format
(date, date-time, email, uri), integers with ranges, numbers, booleans, arrays of
strings, a nested object and an array of objects; returns are objects with arrays.
Two dependency chains exist (a search result's ``id`` feeds ``*_id`` parameters).
"""

from __future__ import annotations

from toolkiln.schema import api_from_dict, apis_frame


def _o(props: dict, required: list[str] | None = None) -> dict:
    return {"type": "object", "properties": props, "required": required or []}


def _s(desc: str, **kw) -> dict:
    return {"type": "string", "description": desc, **kw}


def _i(desc: str, **kw) -> dict:
    return {"type": "integer", "description": desc, **kw}


def _n(desc: str, **kw) -> dict:
    return {"type": "number", "description": desc, **kw}


def _b(desc: str, **kw) -> dict:
    return {"type": "boolean", "description": desc, **kw}


def _list_ret(obj: str, extra: dict | None = None) -> dict:
    item = {"id": _s(f"Identifier of the {obj}."), "name": _s(f"Name of the {obj}."), **(extra or {})}
    return _o({"results": {"type": "array", "description": f"Matching {obj}s.", "items": _o(item)},
               "total": _i("Total number of matches.")})


def _one_ret(obj: str, extra: dict | None = None) -> dict:
    return _o({"id": _s(f"Identifier of the {obj}."), "status": _s("Resulting status.", enum=["ok", "pending", "queued"]),
               **(extra or {})})


API_DICTS = [
    # ---- weather (5)
    {"name": "weather.get_forecast", "description": "Get the daily weather forecast for a city.",
     "parameters": _o({"city": _s("City name, e.g. 'Lisbon'."), "days": _i("Days to forecast.", minimum=1, maximum=14),
                       "units": _s("Unit system.", enum=["metric", "imperial"], default="metric")}, ["city"]),
     "returns": _o({"city": _s("City."), "forecast": {"type": "array", "description": "Per day.", "items": _o(
         {"date": _s("Day.", format="date"), "high": _n("High."), "low": _n("Low.")})}}),
     "domain": "weather", "category": "forecasts", "functionalities": ["get the daily weather forecast for a city"]},
    {"name": "weather.get_hourly_forecast", "description": "Get the hourly forecast near coordinates.",
     "parameters": _o({"location": {"type": "object", "description": "Where.", "properties": {
         "latitude": _n("Latitude.", minimum=-90, maximum=90), "longitude": _n("Longitude.", minimum=-180, maximum=180)},
         "required": ["latitude", "longitude"]}, "hours": _i("Hours ahead.", minimum=1, maximum=48)}, ["location"]),
     "returns": _o({"hours": {"type": "array", "description": "Per hour.", "items": _o({"time": _s("Hour.", format="date-time"),
                                                                                      "temp": _n("Temperature.")})}}),
     "domain": "weather", "category": "forecasts", "functionalities": ["get the hourly forecast near coordinates"]},
    {"name": "weather.get_air_quality", "description": "Get the air quality index of a city on a date.",
     "parameters": _o({"city": _s("City name."), "date": _s("Date (YYYY-MM-DD).", format="date")}, ["city", "date"]),
     "returns": _o({"aqi": _i("Air quality index.", minimum=0, maximum=500), "category": _s("Band.")}),
     "domain": "weather", "category": "air_quality", "functionalities": ["get the air quality index of a city on a date"]},
    {"name": "weather.list_alerts", "description": "List severe weather alerts for a country.",
     "parameters": _o({"country": _s("ISO 3166-1 alpha-2 code.", pattern="^[A-Z]{2}$"),
                       "severity": _s("Minimum severity.", enum=["minor", "moderate", "severe", "extreme"]),
                       "limit": _i("Maximum alerts.", minimum=1, maximum=50, default=10)}, ["country"]),
     "returns": _list_ret("alert", {"severity": _s("Severity.")}),
     "domain": "weather", "category": "alerts", "functionalities": ["list severe weather alerts for a country"]},
    {"name": "weather.subscribe_alerts", "description": "Subscribe an email address to weather alerts for cities.",
     "parameters": _o({"email": _s("Subscriber email.", format="email"),
                       "cities": {"type": "array", "description": "Cities to watch.", "items": {"type": "string"},
                                  "minItems": 1, "maxItems": 5},
                       "daily_digest": _b("Send a daily digest too.", default=False)}, ["email", "cities"]),
     "returns": _one_ret("subscription"),
     "domain": "weather", "category": "alerts", "functionalities": ["subscribe to weather alerts for cities"]},
    # ---- finance (8)
    {"name": "finance.convert_currency", "description": "Convert an amount between two currencies.",
     "parameters": _o({"amount": _n("Amount to convert.", minimum=0), "from_currency": _s("ISO 4217.", pattern="^[A-Z]{3}$"),
                       "to_currency": _s("ISO 4217.", pattern="^[A-Z]{3}$")}, ["amount", "from_currency", "to_currency"]),
     "returns": _o({"converted": _n("Converted amount."), "rate": _n("Rate used.")}),
     "domain": "finance", "category": "currency", "functionalities": ["convert an amount between two currencies"]},
    {"name": "finance.get_exchange_rate", "description": "Get the exchange rate of a currency pair on a date.",
     "parameters": _o({"base": _s("Base currency.", enum=["USD", "EUR", "GBP", "JPY"]), "quote": _s("Quote currency.", pattern="^[A-Z]{3}$"),
                       "date": _s("Date.", format="date")}, ["base", "quote"]),
     "returns": _o({"rate": _n("Rate."), "date": _s("Date.", format="date")}),
     "domain": "finance", "category": "currency", "functionalities": ["get the exchange rate of a currency pair"]},
    {"name": "finance.get_stock_quote", "description": "Get the latest quote of a stock ticker.",
     "parameters": _o({"symbol": _s("Ticker.", pattern="^[A-Z]{1,5}$"), "include_after_hours": _b("Include after hours.")}, ["symbol"]),
     "returns": _o({"symbol": _s("Ticker."), "price": _n("Last price."), "currency": _s("Currency.")}),
     "domain": "finance", "category": "stocks", "functionalities": ["get the latest quote of a stock ticker"]},
    {"name": "finance.search_stocks", "description": "Search stocks by company name.",
     "parameters": _o({"query": _s("Company name or keyword.", minLength=2), "exchange": _s("Exchange.", enum=["NYSE", "NASDAQ", "LSE", "XETRA"])}, ["query"]),
     "returns": _list_ret("stock", {"symbol": _s("Ticker.")}),
     "domain": "finance", "category": "stocks", "functionalities": ["search stocks by company name"]},
    {"name": "finance.create_price_alert", "description": "Create a price alert for a stock.",
     "parameters": _o({"stock_id": _s("Stock identifier from a search."), "threshold": _n("Price threshold.", minimum=0.01),
                       "direction": _s("Trigger direction.", enum=["above", "below"])}, ["stock_id", "threshold", "direction"]),
     "returns": _one_ret("alert"),
     "domain": "finance", "category": "stocks", "functionalities": ["create a price alert for a stock"]},
    {"name": "finance.list_transactions", "description": "List account transactions between two dates.",
     "parameters": _o({"account_id": _s("Account.", pattern="^ACC-[0-9]{6}$"), "start_date": _s("From.", format="date"),
                       "end_date": _s("Until.", format="date"),
                       "categories": {"type": "array", "description": "Categories to include.", "items": _s("Category.")},
                       "filters": {"type": "array", "description": "Conditions.", "maxItems": 3, "items": _o(
                           {"field": _s("Field."), "operator": _s("Comparison.", enum=["eq", "lt", "gt"]), "value": _s("Value.")},
                           ["field", "operator", "value"])}}, ["account_id", "start_date", "end_date"]),
     "returns": _list_ret("transaction", {"amount": _n("Amount.")}),
     "domain": "finance", "category": "banking", "functionalities": ["list account transactions between two dates"]},
    {"name": "finance.calculate_loan_payment", "description": "Calculate the monthly payment of a loan.",
     "parameters": _o({"principal": _n("Loan amount.", minimum=1000, maximum=2000000), "interest_rate": _n("Annual rate in percent.", minimum=0, maximum=30),
                       "term_years": _i("Term in years.", minimum=1, maximum=40)}, ["principal", "interest_rate", "term_years"]),
     "returns": _o({"monthly_payment": _n("Payment."), "total_interest": _n("Interest.")}),
     "domain": "finance", "category": "loans", "functionalities": ["calculate the monthly payment of a loan"]},
    {"name": "finance.get_account_balance", "description": "Get the balance of a bank account.",
     "parameters": _o({"account_id": _s("Account.", pattern="^ACC-[0-9]{6}$")}, ["account_id"]),
     "returns": _o({"balance": _n("Balance."), "currency": _s("Currency.")}),
     "domain": "finance", "category": "banking", "functionalities": ["get the balance of a bank account"]},
    # ---- travel (8)
    {"name": "travel.search_flights", "description": "Search flights between two airports on a date.",
     "parameters": _o({"origin": _s("IATA code.", pattern="^[A-Z]{3}$"), "destination": _s("IATA code.", pattern="^[A-Z]{3}$"),
                       "date": _s("Departure date.", format="date"), "passengers": _i("Passengers.", minimum=1, maximum=9),
                       "cabin": _s("Cabin.", enum=["economy", "premium_economy", "business", "first"])},
                      ["origin", "destination", "date"]),
     "returns": _list_ret("flight", {"price": _n("Price.")}),
     "domain": "travel", "category": "flights", "functionalities": ["search flights between two airports"]},
    {"name": "travel.book_flight", "description": "Book a flight for a passenger.",
     "parameters": _o({"flight_id": _s("Flight from a search."), "passenger_name": _s("Full name."),
                       "email": _s("Contact email.", format="email")}, ["flight_id", "passenger_name"]),
     "returns": _one_ret("booking"),
     "domain": "travel", "category": "flights", "functionalities": ["book a flight for a passenger"]},
    {"name": "travel.search_hotels", "description": "Search hotels in a city for a stay.",
     "parameters": _o({"city": _s("City."), "check_in": _s("Check-in.", format="date"), "check_out": _s("Check-out.", format="date"),
                       "guests": _i("Guests.", minimum=1, maximum=8), "max_price": _n("Max nightly price.", minimum=0),
                       "amenities": {"type": "array", "description": "Wanted amenities.", "items": _s("Amenity.", enum=["wifi", "pool", "parking", "gym"])}},
                      ["city", "check_in", "check_out"]),
     "returns": _list_ret("hotel", {"rating": _n("Rating.")}),
     "domain": "travel", "category": "hotels", "functionalities": ["search hotels in a city"]},
    {"name": "travel.book_hotel", "description": "Book a hotel room.",
     "parameters": _o({"hotel_id": _s("Hotel from a search."), "guest_name": _s("Guest name."),
                       "breakfast": _b("Include breakfast.")}, ["hotel_id", "guest_name"]),
     "returns": _one_ret("reservation"),
     "domain": "travel", "category": "hotels", "functionalities": ["book a hotel room"]},
    {"name": "travel.get_visa_requirements", "description": "Get visa requirements between two countries.",
     "parameters": _o({"passport_country": _s("Passport country code.", pattern="^[A-Z]{2}$"),
                       "destination_country": _s("Destination country code.", pattern="^[A-Z]{2}$")},
                      ["passport_country", "destination_country"]),
     "returns": _o({"visa_required": _b("Whether a visa is needed."), "max_stay_days": _i("Maximum stay.")}),
     "domain": "travel", "category": "documents", "functionalities": ["get visa requirements between two countries"]},
    {"name": "travel.find_restaurants", "description": "Find restaurants near an address by cuisine.",
     "parameters": _o({"address": _s("Street address."), "cuisine": _s("Cuisine.", enum=["italian", "japanese", "mexican", "indian"]),
                       "radius_km": _n("Search radius.", minimum=0.1, maximum=20), "open_now": _b("Only open places.")},
                      ["address", "cuisine"]),
     "returns": _list_ret("restaurant", {"url": _s("Website.", format="uri")}),
     "domain": "travel", "category": "dining", "functionalities": ["find restaurants near an address"]},
    {"name": "travel.get_train_times", "description": "Get train departures between two stations.",
     "parameters": _o({"from_location": _s("Departure station."), "to_location": _s("Arrival station."),
                       "start_time": _s("Earliest departure.", format="date-time")}, ["from_location", "to_location"]),
     "returns": _list_ret("train", {"departure": _s("Departure.", format="date-time")}),
     "domain": "travel", "category": "trains", "functionalities": ["get train departures between two stations"]},
    {"name": "travel.rate_trip", "description": "Leave a review of a trip.",
     "parameters": _o({"trip_id": _s("Trip id.", pattern="^TR[0-9]{5}$"), "rating": _i("Stars.", minimum=1, maximum=5),
                       "comment": _s("Review text.", maxLength=500),
                       "details": {"type": "object", "description": "Extra scores.", "properties": {
                           "cleanliness": _i("1-5.", minimum=1, maximum=5), "value_for_money": _i("1-5.", minimum=1, maximum=5)}}},
                      ["trip_id", "rating"]),
     "returns": _one_ret("review"),
     "domain": "travel", "category": "reviews", "functionalities": ["leave a review of a trip"]},
]


def fixture_pool_frame():
    """The fixture APIs as a ``data/api_pool.parquet``-shaped frame."""
    return apis_frame([api_from_dict(a, provenance={"generator": "toolkiln.testing.pool"}) for a in API_DICTS])
