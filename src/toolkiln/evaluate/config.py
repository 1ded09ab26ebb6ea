"""Typed params for evaluation (DESIGN.md §2.5)."""

from toolkiln.configbase import Section


class EvaluateConfig(Section):
    """Owned by issue 5; fields are added with the stages that read them."""
