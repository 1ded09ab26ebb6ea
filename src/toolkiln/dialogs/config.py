"""Typed params for dialog generation (DESIGN.md §2.2)."""

from toolkiln.configbase import Section


class DialogsConfig(Section):
    """Owned by issue 3; fields are added with the stages that read them."""
