"""Where the official ESPHome models are (shared/reference-models beside the checkout)."""

from pathlib import Path

import pytest

# As in CI: a copy of shared/ sits next to the clone.
REFERENCE_DIR = Path(__file__).resolve().parents[2] / "shared" / "reference-models"
HEY_JARVIS = REFERENCE_DIR / "hey_jarvis.tflite"
OKAY_NABU = REFERENCE_DIR / "okay_nabu.tflite"

needs_reference_models = pytest.mark.skipif(
    not HEY_JARVIS.exists(),
    reason=f"{REFERENCE_DIR} not found: the official ESPHome models are read from "
    "shared/reference-models beside the checkout",
)
