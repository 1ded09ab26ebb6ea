"""Typed params for verification and the train/test split (DESIGN.md §2.3)."""

from toolkiln.configbase import Section


class VerifyConfig(Section):
    """Owned by issue 4."""


class SplitConfig(Section):
    """Owned by issue 3 (split by API)."""
