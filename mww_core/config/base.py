"""The base of every config section, and field helpers (probability, range, section)."""

from __future__ import annotations

import hashlib
import json
from typing import Any, ClassVar

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
    # Fields left out of the fingerprint while they hold these values: fields added after
    # caches were made, which at this value give what was made before them (so adding one
    # rebuilds nothing).
    _quiet_defaults: ClassVar[dict[str, Any]] = {}

    def fingerprint(self) -> str:
        """Stable hash of this section's values, used in stage fingerprints."""
        text = json.dumps(self.fingerprint_data(), sort_keys=True)
        return hashlib.sha256(text.encode()).hexdigest()[:16]

    def fingerprint_data(self) -> dict[str, Any]:
        """The values the fingerprint hashes: the JSON dump without quiet defaults, in this
        section and in every section it holds (alone or in a list)."""
        data = self.model_dump(mode="json")
        for name, value in self._quiet_defaults.items():
            if getattr(self, name) == value:
                del data[name]
        for name in data:
            value = getattr(self, name)
            if isinstance(value, Section):
                data[name] = value.fingerprint_data()
            elif isinstance(value, list | tuple) and any(isinstance(v, Section) for v in value):
                data[name] = [
                    v.fingerprint_data() if isinstance(v, Section) else d
                    for v, d in zip(value, data[name], strict=True)
                ]
        return data
