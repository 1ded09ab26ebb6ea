"""Typed params for the policy model, difficulty scores and warm-up SFT (DESIGN.md §2.4)."""

from toolkiln.configbase import Section


class PolicyConfig(Section):
    """Owned by issue 6."""


class DifficultyConfig(Section):
    """Owned by issue 6."""


class SFTConfig(Section):
    """Owned by issue 6."""
