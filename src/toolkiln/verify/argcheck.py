"""Old import path of :mod:`toolkiln.argcheck`, kept only while ``verify/rules.py`` imports it from here."""

from toolkiln.argcheck import CheckerCache, short

__all__ = ["CheckerCache", "short"]
