import pytest
import yaml

TINY = {
    "weather": {"domain": "Weather & Climate", "slug": "weather", "description": "Weather data.", "categories": [
        {"name": "Forecasts", "slug": "forecasts", "functionalities": [
            "get the hourly weather forecast for a city", "get the 10-day forecast for geographic coordinates",
            "list severe weather alerts for a country", "compare forecasts between two cities"]},
        {"name": "Air Quality", "slug": "air_quality", "functionalities": [
            "get the current air quality index for a city", "get pollen levels near coordinates",
            "list air quality stations within a radius"]}]},
    "finance": {"domain": "Finance & Banking", "slug": "finance", "description": "Money.", "categories": [
        {"name": "Currency Exchange", "slug": "currency_exchange", "functionalities": [
            "convert an amount between two currencies at a historical date", "get the latest exchange rate for a currency",
            "list supported currencies"]},
        {"name": "Stocks", "slug": "stocks", "functionalities": [
            "get the latest quote for a stock ticker", "get historical prices for a stock over a date range",
            "search stocks by company name", "create a price alert for a stock"]}]},
}


@pytest.fixture
def tiny_tree_dir(tmp_path):
    d = tmp_path / "tree"
    d.mkdir()
    for slug, dom in TINY.items():
        (d / f"{slug}.yaml").write_text(yaml.safe_dump(dom, sort_keys=False))
    return d


@pytest.fixture
def tiny_tree(tiny_tree_dir):
    from toolkiln.synth.tree import load_tree

    return load_tree(tiny_tree_dir)
