"""Typed params for the ADNT experiment (DESIGN.md §2.6)."""

from toolkiln.configbase import Section


class ADNTConfig(Section):
    """Owned by issue 7; fields are added with the stages that read them."""
