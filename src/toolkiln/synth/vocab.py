"""Parameter and return-value vocabulary used by the programmatic API synthesiser.

ToolACE's synthesiser is an LLM that, given fine-grained functionalities, writes
parameters a real API would have. The embedded simulator approximates that with a
vocabulary: trigger words in a functionality ("city", "flight", "between two
dates") map to parameter templates whose schemas and descriptions look like real
API docs, each with the constraint variants the evolution operator
``add_constraints`` may apply (patterns, enums, ranges, formats).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field


@dataclass(frozen=True)
class ParamTemplate:
    name: str
    schema: dict
    constraints: tuple[dict, ...] = field(default_factory=tuple)  # alternatives for add_constraints


def P(name: str, type_: str, desc: str, *constraints: dict, **extra) -> ParamTemplate:
    schema = {"type": type_, "description": desc, **extra}
    return ParamTemplate(name, schema, tuple(constraints))


LANGS = ["en", "es", "fr", "de", "it", "pt", "ja", "zh", "ko", "ar", "hi", "ru"]
COUNTRIES = ["US", "GB", "DE", "FR", "ES", "IT", "JP", "CN", "IN", "BR", "CA", "AU", "MX", "NL", "SE"]
CURRENCIES = ["USD", "EUR", "GBP", "JPY", "CHF", "CAD", "AUD", "CNY", "INR", "BRL"]

# (trigger regex, templates). Order matters only for readability; all matching triggers apply.
TRIGGERS: list[tuple[str, tuple[ParamTemplate, ...]]] = [
    (r"\bcit(y|ies)\b|\btown\b", (P("city", "string", "City name, e.g. 'Lisbon' or 'San Francisco'.", {"minLength": 2, "maxLength": 85}),)),
    (r"\bcountr(y|ies)\b|\bnational\b", (P("country", "string", "Country as an ISO 3166-1 alpha-2 code, e.g. 'DE'.", {"pattern": "^[A-Z]{2}$"}, {"enum": COUNTRIES}),)),
    (r"\bcoordinates?\b|\blatitude\b|\bgps\b|\bnearby\b|\bnear\b|\baround\b", (
        P("latitude", "number", "Latitude in decimal degrees.", {"minimum": -90, "maximum": 90}),
        P("longitude", "number", "Longitude in decimal degrees.", {"minimum": -180, "maximum": 180}))),
    (r"\bradius\b|\bwithin\b|\bnearby\b", (P("radius_km", "number", "Search radius in kilometres.", {"minimum": 0.1, "maximum": 100}),)),
    (r"\baddress(es)?\b|\bgeocod", (P("address", "string", "Street address, e.g. '221B Baker Street, London'.", {"minLength": 5}),)),
    (r"\bpostal\b|\bzip\b", (P("postal_code", "string", "Postal or ZIP code.", {"pattern": "^[A-Za-z0-9 -]{3,10}$"}),)),
    (r"\bdates?\b|\bday\b|\bon a\b|\bhistorical\b", (P("date", "string", "Date in ISO 8601 format (YYYY-MM-DD).", {"format": "date"}, {"pattern": "^\\d{4}-\\d{2}-\\d{2}$"}),)),
    (r"\bbetween\b.*\bdates\b|\brange\b|\bperiod\b|\bhistory\b|\bover time\b|\btrend", (
        P("start_date", "string", "Start of the period (YYYY-MM-DD).", {"format": "date"}),
        P("end_date", "string", "End of the period (YYYY-MM-DD), inclusive.", {"format": "date"}))),
    (r"\btime\b|\bschedul|\bremind|\bappointment", (P("start_time", "string", "Start time in ISO 8601 (e.g. 2025-03-14T09:30:00Z).", {"format": "date-time"}),)),
    (r"\bhourly\b|\bhours?\b", (P("hours", "integer", "Number of hours ahead to cover.", {"minimum": 1, "maximum": 168}),)),
    (r"\b\d+-day\b|\bdays\b|\bdaily\b|\bweek", (P("days", "integer", "Number of days to cover.", {"minimum": 1, "maximum": 16}),)),
    (r"\bamount\b|\bpay|\btransfer|\bconvert\b.*\bcurrenc|\bloan\b|\bbudget\b|\bdeposit\b|\brefund", (
        P("amount", "number", "Monetary amount.", {"minimum": 0}, {"minimum": 0.01, "maximum": 1000000}),)),
    (r"\bcurrenc(y|ies)\b|\bexchange rate", (
        P("currency", "string", "ISO 4217 currency code, e.g. 'EUR'.", {"pattern": "^[A-Z]{3}$"}, {"enum": CURRENCIES}),)),
    (r"\bconvert\b.*\bcurrenc|\bexchange rate|\bbetween two currenc", (
        P("from_currency", "string", "Source currency (ISO 4217).", {"pattern": "^[A-Z]{3}$"}, {"enum": CURRENCIES}),
        P("to_currency", "string", "Target currency (ISO 4217).", {"pattern": "^[A-Z]{3}$"}, {"enum": CURRENCIES}))),
    (r"\bstocks?\b|\bticker\b|\bshares?\b|\bequit", (P("symbol", "string", "Ticker symbol, e.g. 'AAPL'.", {"pattern": "^[A-Z]{1,5}$"}),)),
    (r"\bcrypto|\btoken\b|\bcoin\b|\bwallet\b", (P("asset", "string", "Asset symbol, e.g. 'BTC'.", {"pattern": "^[A-Z0-9]{2,10}$"}),)),
    (r"\bwallet\b|\bblockchain address\b|\bon-chain\b", (P("wallet_address", "string", "Wallet address (hex, 0x-prefixed).", {"pattern": "^0x[a-fA-F0-9]{40}$"}),)),
    (r"\baccounts?\b", (P("account_id", "string", "Account identifier.", {"pattern": "^[A-Za-z0-9_-]{6,32}$"}),)),
    (r"\busers?\b|\bprofile\b|\bmember\b|\bcustomer\b", (P("user_id", "string", "Identifier of the user.", {"pattern": "^[A-Za-z0-9_-]{3,40}$"}),)),
    (r"\bemail\b|\bnewsletter\b|\binvit", (P("email", "string", "Email address of the recipient.", {"format": "email"}),)),
    (r"\bphone\b|\bsms\b|\btext message\b|\bcall\b", (P("phone_number", "string", "Phone number in E.164 format, e.g. '+14155552671'.", {"pattern": "^\\+[1-9]\\d{6,14}$"}),)),
    (r"\burls?\b|\bwebsites?\b|\bweb page\b|\blink\b|\bwebhook", (P("url", "string", "Absolute URL.", {"format": "uri"}),)),
    (r"\bdomains?\b|\bdns\b|\bwhois\b|\bhostname\b|\bssl\b|\bcertificate", (P("domain_name", "string", "Domain name, e.g. 'example.org'.", {"format": "hostname"}),)),
    (r"\bip\b|\bip address", (P("ip_address", "string", "IPv4 address.", {"format": "ipv4"}),)),
    (r"\bcve\b|\bvulnerabilit", (P("cve_id", "string", "CVE identifier, e.g. 'CVE-2021-44228'.", {"pattern": "^CVE-\\d{4}-\\d{4,}$"}),)),
    (r"\bhash\b|\bmalware\b|\bfile reputation\b", (P("file_hash", "string", "SHA-256 hash of the file.", {"pattern": "^[a-f0-9]{64}$"}),)),
    (r"\brepositor(y|ies)\b|\bpull requests?\b|\bcommits?\b|\bbranch", (
        P("repository", "string", "Repository as 'owner/name'.", {"pattern": "^[\\w.-]+/[\\w.-]+$"}),)),
    (r"\bbranch(es)?\b|\bcommits?\b", (P("branch", "string", "Branch name.", {"maxLength": 100}, default="main"),)),
    (r"\bpull requests?\b|\bissues?\b", (P("state", "string", "Filter by state.", {"enum": ["open", "closed", "all"]}, default="open"),)),
    (r"\blabels?\b|\btags?\b|\bkeywords?\b", (P("tags", "array", "Tags to filter by or attach.", {"minItems": 1, "maxItems": 10}, items={"type": "string"}),)),
    (r"\bflights?\b|\bairports?\b|\bairline", (
        P("origin", "string", "Origin airport IATA code, e.g. 'LIS'.", {"pattern": "^[A-Z]{3}$"}),
        P("destination", "string", "Destination airport IATA code, e.g. 'JFK'.", {"pattern": "^[A-Z]{3}$"}))),
    (r"\bflight status\b|\bflight number\b|\btrack a flight\b", (P("flight_number", "string", "Flight number, e.g. 'TP1351'.", {"pattern": "^[A-Z0-9]{2}\\d{1,4}$"}),)),
    (r"\bhotels?\b|\baccommodation|\brental\b|\bstay\b|\broom", (
        P("check_in", "string", "Check-in date (YYYY-MM-DD).", {"format": "date"}),
        P("check_out", "string", "Check-out date (YYYY-MM-DD).", {"format": "date"}))),
    (r"\bguests?\b|\bpassengers?\b|\bparty\b|\btable\b|\btravell?ers?\b|\battendees?\b|\bseats?\b|\btickets?\b", (
        P("party_size", "integer", "Number of people.", {"minimum": 1, "maximum": 20}),)),
    (r"\btrains?\b|\bbus(es)?\b|\btransit\b|\broutes?\b|\bdirections\b|\bcommute", (
        P("from_location", "string", "Start location (place name or address)."),
        P("to_location", "string", "End location (place name or address)."))),
    (r"\bdirections\b|\broutes?\b|\bcommute\b|\btravel time\b|\bdistance\b", (
        P("mode", "string", "Travel mode.", {"enum": ["driving", "walking", "cycling", "transit"]}, default="driving"),)),
    (r"\bweather\b|\bforecast\b|\btemperature\b|\bclimate\b|\bprecipitation\b|\bwind\b|\bair quality\b|\buv\b", (
        P("units", "string", "Unit system for the values.", {"enum": ["metric", "imperial"]}, default="metric"),)),
    (r"\brecipes?\b|\bmeals?\b|\bdish(es)?\b|\bcook", (P("ingredients", "array", "Ingredients to include.", {"maxItems": 15}, items={"type": "string"}),)),
    (r"\bdiet|\ballerg|\bvegan\b|\bvegetarian\b|\bnutrition", (P("diet", "string", "Dietary preference.", {"enum": ["none", "vegetarian", "vegan", "gluten_free", "keto", "halal", "kosher"]}),)),
    (r"\brestaurants?\b|\bcuisine\b|\bdining\b", (P("cuisine", "string", "Cuisine type, e.g. 'italian'.", {"enum": ["italian", "japanese", "mexican", "indian", "french", "thai", "chinese", "american"]}),)),
    (r"\bcalories?\b|\bworkouts?\b|\bexercis|\bsteps\b|\bactivit", (P("duration_minutes", "integer", "Duration in minutes.", {"minimum": 1, "maximum": 600}),)),
    (r"\bweight\b|\bparcel\b|\bpackage\b|\bshipment\b|\bfreight\b|\bbmi\b", (P("weight_kg", "number", "Weight in kilograms.", {"minimum": 0.01, "maximum": 30000}),)),
    (r"\bheight\b|\bbmi\b", (P("height_cm", "number", "Height in centimetres.", {"minimum": 30, "maximum": 272}),)),
    (r"\bage\b|\bbirth|\bborn\b", (P("age", "integer", "Age in years.", {"minimum": 0, "maximum": 130}),)),
    (r"\btracking\b|\bshipment status\b|\btrack a (package|parcel|shipment)", (P("tracking_number", "string", "Carrier tracking number.", {"pattern": "^[A-Z0-9]{8,30}$"}),)),
    (r"\bcarrier\b|\bshipping\b|\bcourier\b", (P("carrier", "string", "Shipping carrier.", {"enum": ["ups", "fedex", "dhl", "usps", "royal_mail"]}),)),
    (r"\borders?\b|\bpurchase\b|\bcheckout\b|\bcart\b", (P("order_id", "string", "Order identifier.", {"pattern": "^[A-Z0-9-]{6,20}$"}),)),
    (r"\bproducts?\b|\bitems?\b|\bsku\b|\binventory\b|\bstock level", (P("product_id", "string", "Product identifier (SKU).", {"pattern": "^[A-Za-z0-9-]{4,24}$"}),)),
    (r"\bquantity\b|\bcart\b|\binventory\b|\bunits\b|\border\b", (P("quantity", "integer", "Number of units.", {"minimum": 1, "maximum": 999}),)),
    (r"\bprices?\b|\bcost\b|\bcheap|\bexpensive\b|\bbudget\b|\bdeals?\b|\bdiscount", (
        P("max_price", "number", "Maximum price in the listing currency.", {"minimum": 0}),)),
    (r"\breviews?\b|\bratings?\b|\brated\b", (P("min_rating", "number", "Minimum average rating (0-5).", {"minimum": 0, "maximum": 5}),)),
    (r"\bmovies?\b|\bfilms?\b|\bshows?\b|\bseries\b|\bepisodes?\b|\bstreaming\b", (P("title", "string", "Title, e.g. 'The Matrix'.", {"minLength": 1, "maxLength": 200}),)),
    (r"\bgenres?\b|\bmovies?\b|\bmusic\b|\bbooks?\b|\bgames?\b", (P("genre", "string", "Genre to filter by.", {"enum": ["action", "comedy", "drama", "horror", "sci-fi", "documentary", "jazz", "rock", "pop", "classical"]}),)),
    (r"\bsongs?\b|\btracks?\b|\balbums?\b|\bartists?\b|\bplaylists?\b|\blyrics\b", (P("artist", "string", "Artist name."),)),
    (r"\bplaylists?\b", (P("playlist_id", "string", "Playlist identifier.", {"pattern": "^[A-Za-z0-9]{10,24}$"}),)),
    (r"\bpodcasts?\b|\bepisodes?\b|\bradio\b", (P("show_name", "string", "Name of the show or podcast."),)),
    (r"\bteams?\b|\bclubs?\b|\bsquad\b", (P("team", "string", "Team name, e.g. 'Arsenal'."),)),
    (r"\bplayers?\b|\bathletes?\b|\bdrivers?\b", (P("player_name", "string", "Full name of the player."),)),
    (r"\bleagues?\b|\btournaments?\b|\bstandings\b|\bseason\b|\bfixtures?\b|\bmatch(es)?\b", (
        P("league", "string", "League or competition, e.g. 'Premier League'."),
        P("season", "integer", "Season start year.", {"minimum": 1900, "maximum": 2100}))),
    (r"\bcourses?\b|\blessons?\b|\bclass(es)?\b|\bstudents?\b|\bgrades?\b|\bquiz", (P("course_id", "string", "Course identifier.", {"pattern": "^[A-Z]{2,4}-?\\d{2,4}$"}),)),
    (r"\bjobs?\b|\bpositions?\b|\bvacanc|\bsalar|\bcandidates?\b|\bresumes?\b|\bapplicants?\b", (
        P("job_title", "string", "Job title, e.g. 'data engineer'."),)),
    (r"\bsalar|\bexperience\b|\bseniority\b", (P("experience_years", "integer", "Years of experience.", {"minimum": 0, "maximum": 50}),)),
    (r"\bpropert(y|ies)\b|\bhomes?\b|\bhous(e|es|ing)\b|\bapartments?\b|\blistings?\b|\bmortgage|\brent\b", (
        P("bedrooms", "integer", "Minimum number of bedrooms.", {"minimum": 0, "maximum": 10}),)),
    (r"\bmortgage|\bloan\b|\binterest\b|\bapr\b", (
        P("interest_rate", "number", "Annual interest rate in percent.", {"minimum": 0, "maximum": 30}),
        P("term_years", "integer", "Loan term in years.", {"minimum": 1, "maximum": 40}))),
    (r"\bposts?\b|\bmessages?\b|\bcomments?\b|\btweets?\b|\bstatus update\b|\bchat\b", (P("text", "string", "Text content.", {"minLength": 1, "maxLength": 2000}),)),
    (r"\bchannels?\b|\bgroups?\b|\bcommunit(y|ies)\b|\bthreads?\b|\bconversations?\b", (P("channel_id", "string", "Channel or group identifier.", {"pattern": "^[A-Za-z0-9_-]{4,32}$"}),)),
    (r"\bhashtags?\b|\btrending\b|\bmentions?\b", (P("hashtag", "string", "Hashtag without '#'.", {"pattern": "^[A-Za-z0-9_]{1,100}$"}),)),
    (r"\bnews\b|\barticles?\b|\bheadlines?\b|\bstor(y|ies)\b|\bblog", (P("topic", "string", "Topic or keyword to match."),)),
    (r"\bnews\b|\bheadlines?\b|\bsources?\b|\bpublish", (P("source", "string", "Publisher or outlet identifier."),)),
    (r"\btranslat|\blanguages?\b|\blocali[sz]|\bsubtitles?\b|\btranscri", (
        P("target_language", "string", "Target language (ISO 639-1).", {"enum": LANGS}, {"pattern": "^[a-z]{2}$"}),)),
    (r"\btranslat|\bdetect the language\b|\bspell|\bgrammar\b|\bsentiment\b|\bsummari[sz]|\bparaphras|\btext\b", (
        P("text", "string", "Input text.", {"minLength": 1, "maxLength": 5000}),)),
    (r"\bfiles?\b|\bdocuments?\b|\bspreadsheets?\b|\bpdf\b|\bupload\b|\battachments?\b", (P("file_id", "string", "File identifier.", {"pattern": "^[A-Za-z0-9_-]{8,64}$"}),)),
    (r"\bexport\b|\breport\b|\bdownload\b|\bconvert\b.*\b(file|document|image|format)", (
        P("format", "string", "Output file format.", {"enum": ["pdf", "csv", "json", "xlsx", "png", "html"]}),)),
    (r"\bimages?\b|\bphotos?\b|\bpictures?\b|\bthumbnails?\b|\bavatar", (P("image_url", "string", "URL of the image.", {"format": "uri"}),)),
    (r"\bresi[sz]e|\bthumbnail|\bcrop\b|\bdimensions\b", (
        P("width", "integer", "Width in pixels.", {"minimum": 1, "maximum": 8192}),
        P("height", "integer", "Height in pixels.", {"minimum": 1, "maximum": 8192}))),
    (r"\bcolou?rs?\b|\bpalette\b|\btheme\b", (P("color", "string", "Colour as hex, e.g. '#1E90FF'.", {"pattern": "^#[0-9A-Fa-f]{6}$"}),)),
    (r"\bevents?\b|\bconcerts?\b|\bconferences?\b|\bmeetups?\b|\bfestivals?\b|\bshows?\b", (P("event_id", "string", "Event identifier.", {"pattern": "^[A-Za-z0-9-]{6,32}$"}),)),
    (r"\bvenues?\b|\bstadium\b|\barena\b", (P("venue", "string", "Venue name."),)),
    (r"\bmeetings?\b|\bcalendar\b|\bappointments?\b|\breminders?\b|\btasks?\b|\bto-?do", (P("title", "string", "Title of the item."),)),
    (r"\bdevices?\b|\bthermostat\b|\bsensors?\b|\blights?\b|\bcamera\b|\block\b|\bappliance|\bplug\b", (P("device_id", "string", "Device identifier.", {"pattern": "^[A-Za-z0-9:_-]{4,40}$"}),)),
    (r"\bthermostat\b|\btemperature\b|\bheating\b|\bcooling\b", (P("temperature_c", "number", "Temperature in degrees Celsius.", {"minimum": -30, "maximum": 60}),)),
    (r"\bbrightness\b|\blights?\b|\bdimm", (P("brightness", "integer", "Brightness in percent.", {"minimum": 0, "maximum": 100}),)),
    (r"\benergy\b|\belectricit|\bconsumption\b|\bmeter\b|\bsolar\b|\butility\b|\bpower\b", (P("meter_id", "string", "Meter identifier.", {"pattern": "^[A-Z0-9]{6,20}$"}),)),
    (r"\bvehicles?\b|\bcars?\b|\bvin\b|\bfleet\b", (P("vin", "string", "Vehicle identification number (17 characters).", {"pattern": "^[A-HJ-NPR-Z0-9]{17}$"}),)),
    (r"\bcharging\b|\bev\b|\bfuel\b|\bgas station", (P("connector_type", "string", "Charger connector type.", {"enum": ["ccs", "chademo", "type2", "tesla"]}),)),
    (r"\bcrops?\b|\bsoil\b|\bfarm|\bharvest|\birrigat|\bfield\b", (P("field_id", "string", "Field identifier.", {"pattern": "^[A-Za-z0-9-]{3,24}$"}),)),
    (r"\bspecies\b|\bplants?\b|\banimals?\b|\bbirds?\b|\bwildlife\b", (P("species", "string", "Species name (common or scientific)."),)),
    (r"\bemissions?\b|\bcarbon\b|\bco2\b|\bfootprint\b", (P("activity_type", "string", "Activity to estimate emissions for.", {"enum": ["flight", "car", "electricity", "shipping", "diet"]}),)),
    (r"\bpatients?\b|\bmedical\b|\bsymptoms?\b|\bdiagnos|\bprescriptions?\b|\bmedications?\b|\bdrugs?\b", (P("patient_id", "string", "Patient identifier.", {"pattern": "^P\\d{6,10}$"}),)),
    (r"\bsymptoms?\b", (P("symptoms", "array", "Reported symptoms.", {"minItems": 1, "maxItems": 20}, items={"type": "string"}),)),
    (r"\bmedications?\b|\bdrugs?\b|\binteractions?\b|\bdosage\b", (P("drug_name", "string", "Drug name (generic or brand)."),)),
    (r"\bdoctors?\b|\bclinic|\bhospital|\bpharmac|\bprovider", (P("specialty", "string", "Medical specialty.", {"enum": ["general", "cardiology", "dermatology", "pediatrics", "orthopedics", "neurology", "psychiatry"]}),)),
    (r"\bpolic(y|ies)\b|\bclaims?\b|\binsur|\bpremium", (P("policy_number", "string", "Insurance policy number.", {"pattern": "^[A-Z]{2}\\d{6,10}$"}),)),
    (r"\bcases?\b|\bcontracts?\b|\blaws?\b|\bregulat|\bcomplian|\bpatents?\b|\btrademarks?\b|\bcourt\b", (P("jurisdiction", "string", "Jurisdiction code, e.g. 'US-CA'.", {"pattern": "^[A-Z]{2}(-[A-Z0-9]{1,3})?$"}),)),
    (r"\bpermits?\b|\blicen[cs]es?\b|\bvisa\b|\bpassport\b|\btax(es)?\b|\bbenefits?\b|\bvot", (P("application_id", "string", "Application reference number.", {"pattern": "^[A-Z0-9-]{6,20}$"}),)),
    (r"\bservers?\b|\binstances?\b|\bclusters?\b|\bcontainers?\b|\bdeploy|\bbuckets?\b|\bvirtual machines?\b|\bload balancer", (
        P("region", "string", "Cloud region, e.g. 'eu-west-1'.", {"pattern": "^[a-z]{2}-[a-z]+-\\d$"}),)),
    (r"\binstances?\b|\bvirtual machines?\b|\bservers?\b", (P("instance_id", "string", "Instance identifier.", {"pattern": "^i-[a-f0-9]{8,17}$"}),)),
    (r"\bbuckets?\b|\bobjects?\b|\bstorage\b|\bbackups?\b", (P("bucket", "string", "Storage bucket name.", {"pattern": "^[a-z0-9][a-z0-9.-]{2,62}$"}),)),
    (r"\blogs?\b|\bmetrics?\b|\balerts?\b|\bincidents?\b|\buptime\b|\bmonitor", (P("severity", "string", "Minimum severity.", {"enum": ["debug", "info", "warning", "error", "critical"]}),)),
    (r"\bdatasets?\b|\btables?\b|\bquer(y|ies)\b|\bsql\b|\bcolumns?\b|\bschema\b", (P("dataset", "string", "Dataset or table name.", {"pattern": "^[A-Za-z_][A-Za-z0-9_.]*$"}),)),
    (r"\bpapers?\b|\bpublications?\b|\bcitations?\b|\bjournals?\b|\bauthors?\b|\bdoi\b", (P("doi", "string", "Digital Object Identifier, e.g. '10.1038/nature14539'.", {"pattern": "^10\\.\\d{4,9}/\\S+$"}),)),
    (r"\bgenes?\b|\bprotein|\bsequence|\bdna\b|\bmolecul|\bchemical|\belements?\b|\bcompounds?\b", (P("identifier", "string", "Entity identifier (e.g. gene symbol or compound name)."),)),
    (r"\bcampaigns?\b|\bads?\b|\badvertis|\baudiences?\b|\bleads?\b|\bconversions?\b", (P("campaign_id", "string", "Campaign identifier.", {"pattern": "^[A-Za-z0-9_-]{4,32}$"}),)),
    (r"\bgames?\b|\bplayers?\b|\bleaderboards?\b|\bachievements?\b|\bmatchmaking\b|\btournaments?\b", (P("platform", "string", "Gaming platform.", {"enum": ["pc", "playstation", "xbox", "switch", "mobile"]}),)),
    (r"\bemployees?\b|\bstaff\b|\bpayroll\b|\bleave\b|\btime off\b|\bonboard|\bteam members?\b", (P("employee_id", "string", "Employee identifier.", {"pattern": "^E\\d{4,8}$"}),)),
    (r"\bpets?\b|\bdogs?\b|\bcats?\b|\bvet", (P("pet_id", "string", "Pet identifier.", {"pattern": "^[A-Za-z0-9-]{4,20}$"}),)),
    (r"\bbooks?\b|\bisbn\b|\blibrar", (P("isbn", "string", "ISBN-13 of the book.", {"pattern": "^97[89]\\d{10}$"}),)),
    (r"\bpassword\b|\bcredentials?\b|\blogin\b|\bauthenticat|\b2fa\b|\bapi keys?\b", (P("username", "string", "Account username.", {"pattern": "^[A-Za-z0-9_.-]{3,32}$"}),)),
    (r"\bnotes?\b|\bdescription\b|\bfeedback\b|\bmemo\b", (P("note", "string", "Free-text note.", {"maxLength": 1000}),)),
    (r"\bpriority\b|\btickets?\b|\btasks?\b|\bincidents?\b|\bbugs?\b", (P("priority", "string", "Priority level.", {"enum": ["low", "medium", "high", "urgent"]}),)),
    (r"\bstatus\b|\bstate\b", (P("status", "string", "Status filter.", {"enum": ["active", "pending", "completed", "cancelled"]}),)),
    (r"\btimezones?\b|\btime zones?\b|\blocal time\b", (P("timezone", "string", "IANA time zone, e.g. 'Europe/Lisbon'.", {"pattern": "^[A-Za-z]+/[A-Za-z_]+$"}),)),
]
COMPILED = [(re.compile(rx, re.I), tpls) for rx, tpls in TRIGGERS]

# Optional generic parameters (added by the add_parameters operator and by verb defaults).
GENERIC = {
    "limit": P("limit", "integer", "Maximum number of results to return.", {"minimum": 1, "maximum": 100}, default=20),
    "offset": P("offset", "integer", "Number of results to skip (pagination).", {"minimum": 0}, default=0),
    "page": P("page", "integer", "Page number, starting at 1.", {"minimum": 1}, default=1),
    "sort_by": P("sort_by", "string", "Field to sort the results by.", {"enum": ["relevance", "date", "name", "price", "rating"]}, default="relevance"),
    "order": P("order", "string", "Sort direction.", {"enum": ["asc", "desc"]}, default="desc"),
    "language": P("language", "string", "Language of the response (ISO 639-1).", {"enum": LANGS}, {"pattern": "^[a-z]{2}$"}, default="en"),
    "include_details": P("include_details", "boolean", "Include extended details in the response.", default=False),
    "fields": P("fields", "array", "Subset of fields to return.", {"minItems": 1, "maxItems": 20}, items={"type": "string"}),
    "dry_run": P("dry_run", "boolean", "Validate the request without applying it.", default=False),
    "notify": P("notify", "boolean", "Send a notification when done.", default=True),
    "callback_url": P("callback_url", "string", "URL to POST the result to when ready.", {"format": "uri"}),
    "query": P("query", "string", "Free-text search query.", {"minLength": 1, "maxLength": 256}),
    "since": P("since", "string", "Only return items updated after this timestamp (ISO 8601).", {"format": "date-time"}),
    "currency_display": P("currency", "string", "Currency for monetary values (ISO 4217).", {"pattern": "^[A-Z]{3}$"}, default="USD"),
    "timezone": P("timezone", "string", "IANA time zone for timestamps.", {"pattern": "^[A-Za-z]+/[A-Za-z_]+$"}, default="UTC"),
    "max_results": P("max_results", "integer", "Upper bound on returned items.", {"minimum": 1, "maximum": 500}, default=50),
}

VERB_CLASSES = {
    "read": {"get", "fetch", "retrieve", "look", "lookup", "show", "check", "read", "view", "download", "track", "monitor", "inspect",
             "identify", "resolve", "describe", "preview", "count", "see"},
    "list": {"list", "search", "browse", "discover", "query", "filter", "find", "explore", "scan", "locate", "match", "autocomplete",
             "suggest", "aggregate", "rank"},
    "create": {"create", "add", "register", "book", "reserve", "schedule", "submit", "post", "send", "upload", "open", "start",
               "make", "publish", "invite", "subscribe", "order", "apply", "issue", "request", "enroll", "generate", "launch",
               "provision", "log", "record", "import", "share", "follow", "tag", "attach", "report", "file", "place", "purchase",
               "buy", "sell", "mint", "deploy", "run", "trigger", "initiate", "join", "claim", "redeem", "clone", "fork", "rent",
               "donate", "vote", "sign", "write", "compose", "draft", "set"},
    "update": {"update", "edit", "modify", "change", "rename", "move", "reschedule", "assign", "enable", "disable", "pause",
               "resume", "renew", "adjust", "configure", "toggle", "approve", "reject", "mark", "restore", "rotate", "scale",
               "upgrade", "merge", "pin", "transfer", "extend", "lock", "unlock", "reset", "sync", "refresh", "reorder", "mute",
               "archive", "close", "rate", "review", "flag", "link", "invite"},
    "delete": {"delete", "remove", "cancel", "unsubscribe", "revoke", "terminate", "stop", "unfollow", "block", "purge",
               "deactivate", "withdraw", "decline", "void", "release", "dismiss", "clear", "destroy", "unpublish"},
    "compute": {"calculate", "compute", "convert", "estimate", "compare", "predict", "analyze", "analyse", "score", "recommend",
                "forecast", "measure", "detect", "classify", "summarize", "summarise", "translate", "validate", "verify", "parse",
                "extract", "transcribe", "simulate", "optimize", "optimise", "format", "evaluate", "assess", "determine", "plan",
                "test", "audit", "diagnose", "benchmark", "normalize", "geocode", "split", "quote", "price", "encode", "decode",
                "hash", "encrypt", "decrypt", "compress", "render", "resize", "crop", "sanitize", "check"},
}
VERB_SYNONYMS = {
    "get": ["get", "fetch", "retrieve", "lookup"], "list": ["list", "browse", "get"], "search": ["search", "find", "query"],
    "create": ["create", "add", "new"], "update": ["update", "modify", "edit"], "delete": ["delete", "remove"],
    "calculate": ["calculate", "compute"], "convert": ["convert"], "check": ["check", "verify", "get"],
}

STOPWORDS = {"the", "a", "an", "for", "of", "by", "with", "to", "in", "on", "and", "from", "at", "its", "their", "your",
             "or", "into", "as", "per", "via", "over", "under", "using", "given", "all", "any", "each", "that", "which",
             "is", "are", "be", "it", "this", "these", "those", "about", "between", "across", "within", "up", "out", "one",
             "two", "three", "specific", "specified", "particular", "current", "currently", "user", "user's", "someone"}


def verb_class(verb: str) -> str:
    v = verb.lower()
    for cls in ("list", "read", "create", "update", "delete", "compute"):
        if v in VERB_CLASSES[cls]:
            return cls
    return "read"


def match_templates(text: str) -> list[ParamTemplate]:
    """Parameter templates triggered by a functionality text, deduplicated by name, in trigger order."""
    seen: dict[str, ParamTemplate] = {}
    for rx, tpls in COMPILED:
        if rx.search(text):
            for t in tpls:
                seen.setdefault(t.name, t)
    return list(seen.values())
