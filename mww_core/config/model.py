"""The architecture: presets, shape and receptive field."""

from __future__ import annotations

from typing import Any, ClassVar, Literal

from pydantic import Field, model_validator

from mww_core.config.base import Section

# The frontend's bands per frame (mww_core.frontend.NUM_CHANNELS; config imports no frontend).
FEATURE_BANDS = 40

# The official hey_jarvis v2 model's shape, read from its .tflite graph.
_OFFICIAL_MIXEDNET: dict[str, Any] = {
    "first_conv_filters": 30,
    "pointwise_filters": [60, 60, 60, 60],
    "mixconv_kernels": [[5], [9], [13], [21]],
}

MODEL_PRESETS: dict[str, dict[str, dict[str, Any]]] = {
    "mixednet": {
        "hey_jarvis": _OFFICIAL_MIXEDNET,
        # The official shape at 1.6 times its widths (its kernels and 149-frame receptive
        # field): 86.6 kB exported and a 29 kB tensor arena against 51.8 kB and 22 kB. The
        # demo's recipe uses it (configs/demo.yaml has the figures).
        "wide": {
            **_OFFICIAL_MIXEDNET,
            "first_conv_filters": 48,
            "pointwise_filters": [96, 96, 96, 96],
        },
        # microWakeWord's training notebook.
        "notebook": {
            "first_conv_filters": 32,
            "pointwise_filters": [64, 64, 64, 64],
            "mixconv_kernels": [[5], [7, 11], [9, 15], [23]],
        },
    },
    "inception": {
        # microWakeWord's inception.py widths; kernels chosen for a 149-frame receptive field.
        "microwakeword": {
            "first_conv_filters": 24,
            "branch_filters": [10, 10, 16],
            "pointwise_filters": [10, 10, 16],
            "branch_kernels": [5, 9, 11],
            "dropout": 0.2,
        },
    },
}
DEFAULT_PRESET = {"mixednet": "hey_jarvis", "inception": "microwakeword"}


class ModelConfig(Section):
    """Architecture; the default is the shape of the official hey_jarvis v2 model.

    ``preset`` names a shape of the chosen architecture (``MODEL_PRESETS``; the field's
    description lists them). Fields given explicitly override the preset's values.
    """

    name: Literal["mixednet", "inception"] = Field(
        "mixednet", description="Architecture, a key of mww_core.model.MODELS."
    )
    preset: str | None = Field(
        None,
        description="Named shape of the architecture; None = its default preset. "
        + "; ".join(
            f"{name}: {', '.join(presets)} (default {DEFAULT_PRESET[name]})"
            for name, presets in MODEL_PRESETS.items()
        )
        + ". Fields given explicitly override the preset's values.",
    )
    first_conv_filters: int = Field(30, ge=1, description="Filters of the first convolution.")
    first_conv_kernel: int = Field(
        5, ge=1, description="Kernel of the first convolution, in frames (10 ms each)."
    )
    stride: int = Field(3, ge=1, description="Frames per streaming inference.")
    pointwise_filters: list[int] = Field(
        default_factory=lambda: [60, 60, 60, 60],
        description="Output width of each block's 1x1 convolution (both architectures).",
    )
    mixconv_kernels: list[list[int]] = Field(
        default_factory=lambda: [[5], [9], [13], [21]],
        description="MixedNet: depthwise kernels of each block (several = MixConv groups).",
    )
    branch_filters: list[int] = Field(
        default_factory=list, description="Inception: width of each block's branches."
    )
    branch_kernels: list[int] = Field(
        default_factory=list, description="Inception: temporal kernel of each block's branches."
    )
    frequency_filters: int = Field(
        0,
        ge=0,
        description="MixedNet: filters of a convolution across the 40 frequency bands of each "
        "frame, before the first convolution (0 = none, as the official models). Shared over "
        "the bands and max-pooled, it finds a pattern wherever a voice puts its formants.",
    )
    frequency_kernel: int = Field(
        5,
        ge=1,
        le=FEATURE_BANDS,
        description="Bands one frequency filter spans (with frequency_filters).",
    )
    frequency_pool: int = Field(
        2, ge=1, description="Neighbouring bands max-pooled after the frequency convolution."
    )
    head_frames: int = Field(5, ge=1, description="Time steps flattened into the dense head.")
    dropout: float = Field(
        0.0,
        ge=0,
        lt=1,
        description="Dropout before the dense head, in training only (both architectures).",
    )

    # Off, the frequency convolution's fields leave the fingerprint as it was before them.
    _quiet_defaults: ClassVar[dict[str, Any]] = {
        "frequency_filters": 0,
        "frequency_kernel": 5,
        "frequency_pool": 2,
    }

    @model_validator(mode="before")
    @classmethod
    def _apply_preset(cls, data: Any) -> Any:
        if not isinstance(data, dict):
            return data
        name = data.get("name", "mixednet")
        presets = MODEL_PRESETS.get(name)
        if presets is None:
            return data  # the name's own validation reports it
        preset = data.get("preset") or DEFAULT_PRESET[name]
        if preset not in presets:
            raise ValueError(
                f"model.preset {preset!r} is not a {name} preset; choose one of "
                f"{', '.join(sorted(presets))}"
            )
        return {**presets[preset], **data}

    @property
    def receptive_field(self) -> int:
        """Input frames one output sees (149 for the official hey_jarvis shape)."""
        if self.name == "mixednet":
            steps = sum(max(k) - 1 for k in self.mixconv_kernels) + self.head_frames - 1
        else:  # inception
            steps = sum(2 * (k - 1) for k in self.branch_kernels) + self.head_frames - 1
        return self.first_conv_kernel + self.stride * steps

    @property
    def frequency_bands(self) -> int:
        """Bands left after the frequency convolution (``frequency_filters``) and its pooling."""
        return (FEATURE_BANDS - self.frequency_kernel + 1) // self.frequency_pool

    @model_validator(mode="after")
    def _frequency_stem(self) -> ModelConfig:
        if self.frequency_filters and self.name != "mixednet":
            raise ValueError(
                f"model.frequency_filters is a MixedNet option; {self.name} has none: "
                "set it to 0 or choose model.name: mixednet"
            )
        if self.frequency_filters and self.frequency_bands < 1:
            raise ValueError(
                f"model.frequency_kernel {self.frequency_kernel} and frequency_pool "
                f"{self.frequency_pool} leave no band of the {FEATURE_BANDS}: make them smaller"
            )
        return self

    @model_validator(mode="after")
    def _blocks_match(self) -> ModelConfig:
        blocks = {"pointwise_filters": self.pointwise_filters}
        if self.name == "mixednet":
            blocks["mixconv_kernels"] = self.mixconv_kernels
        else:
            blocks.update(branch_filters=self.branch_filters, branch_kernels=self.branch_kernels)
        sizes = {k: len(v) for k, v in blocks.items()}
        if len(set(sizes.values())) > 1 or 0 in sizes.values():
            listed = ", ".join(f"model.{k} has {n}" for k, n in sizes.items())
            raise ValueError(f"{listed} entries: give one per block (at least one block)")
        return self
