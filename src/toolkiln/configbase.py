"""Base class for typed config sections (docs/architecture.md#conventions: typed like TRL's configs).

Every section of ``params.yaml`` maps onto a pydantic model that derives from
:class:`Section`: unknown keys are rejected, values are validated strictly
(no silent ``"3" -> 3`` coercion), and each field carries its help text in
``Field(description=...)``. This module imports nothing heavy so that area
config modules can be imported cheaply by every stage.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict


class Section(BaseModel):
    """A frozen, strict, closed config section."""

    model_config = ConfigDict(extra="forbid", frozen=True, strict=True, validate_default=True)
