"""The base of every config section, and field helpers (probability, range, section)."""

from __future__ import annotations

import hashlib
import json
from typing import Any

from pydantic import BaseModel, ConfigDict, Field


def probability(default: float, description: str) -> Any:
    """A field holding a probability (0 to 1)."""
    return Field(default, ge=0, le=1, description=description)


def span(default: tuple[float, float], description: str) -> Any:
    """A field holding a ``[low, high]`` range values are drawn from."""
    return Field(default, description=description)


def section(kind: type, description: str) -> Any:
    """A field holding a whole section, its defaults when not given."""
    return Field(default_factory=kind, description=description)


class Section(BaseModel):
    """Base for every config section: unknown keys are errors, not silently ignored."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    def fingerprint(self) -> str:
        """Stable hash of this section's values, used in stage fingerprints."""
        text = json.dumps(self.model_dump(mode="json"), sort_keys=True)
        return hashlib.sha256(text.encode()).hexdigest()[:16]
