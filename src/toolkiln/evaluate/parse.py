"""Old import path of :mod:`toolkiln.callparse`, kept only while the evaluation harness and
``verify/rules.py`` import it from here."""

from toolkiln.callparse import ParseResult, parse_calls

__all__ = ["ParseResult", "parse_calls"]
