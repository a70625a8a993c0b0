"""The whole config: loading YAML, every problem at once, and --explain-config."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, Field, ValidationError, model_validator

from mww_core.config.audio import AugmentationConfig, FeaturesConfig
from mww_core.config.base import Section, section
from mww_core.config.data import DataConfig
from mww_core.config.model import ModelConfig
from mww_core.config.training import (
    EvaluationConfig,
    ExportConfig,
    MiningConfig,
    PerformanceConfig,
    RetrainConfig,
    TrainingConfig,
)

PRESETS_DIR = Path(__file__).resolve().parents[2] / "configs"


class FullConfig(Section):
    """The whole pipeline's configuration."""

    run_name: str = Field(
        "demo", pattern=r"^[A-Za-z0-9_.-]+$", description="Folder of this run under runs_dir."
    )
    runs_dir: Path = Field(Path("runs"), description="Folder holding every run's folder.")
    data: DataConfig = section(DataConfig, "Where the audio is, and the demo data set.")
    augmentation: AugmentationConfig = section(
        AugmentationConfig, "Waveform augmentation of training windows."
    )
    features: FeaturesConfig = section(FeaturesConfig, "Frontend features and windowing.")
    model: ModelConfig = section(ModelConfig, "The architecture and its shape.")
    training: TrainingConfig = section(TrainingConfig, "Training phases and their shared settings.")
    mining: MiningConfig = section(MiningConfig, "Hard-negative mining between the phases.")
    evaluation: EvaluationConfig = section(EvaluationConfig, "Streaming evaluation and the cutoff.")
    export: ExportConfig = section(ExportConfig, "The exported model and its manifest.")
    performance: PerformanceConfig = section(PerformanceConfig, "Hardware, speed and scale-out.")
    retrain: RetrainConfig = section(RetrainConfig, "Retraining on new negatives.")

    @property
    def run_dir(self) -> Path:
        """Folder holding every stage's outputs for this run."""
        return self.runs_dir / self.run_name

    def target_mismatches(self) -> list[str]:
        """Where training picks its best step and phase at other targets than the cutoff's.

        Chosen at a looser FAH than the manifest's cutoff, a phase that wins there can lose at
        the cutoff users get. Kept apart on purpose (evaluation settings re-run evaluation and
        export alone), so a difference is reported, not refused.
        """
        lines = []
        for name in ("target_fah", "max_near_miss_rate", "near_miss_min_distance"):
            chosen, cutoff = getattr(self.training, name), getattr(self.evaluation, name)
            if chosen != cutoff:
                lines.append(
                    f"training.{name} ({chosen}) differs from evaluation.{name} ({cutoff}): "
                    f"the best step and phase are chosen at one, the manifest's cutoff at the "
                    f"other; set training.{name}: {cutoff} unless that is what you want"
                )
        return lines

    @model_validator(mode="after")
    def _windows_cover_the_model(self) -> FullConfig:
        needed = self.model.receptive_field
        if self.features.window_frames < needed:
            raise ValueError(
                f"features.window_frames ({self.features.window_frames}) is shorter than the "
                f"model's receptive field ({needed} frames): set features.window_frames to at "
                f"least {needed} or choose a smaller model"
            )
        return self


class ConfigError(ValueError):
    """A config file that cannot be used; the message lists every problem."""


def _error_line(error: dict) -> str:
    where = ".".join(str(p) for p in error["loc"]) or "(top level)"
    value = error.get("input")
    shown = repr(value) if not isinstance(value, dict) else "{...}"
    return f"  - {where} = {shown[:80]}: {error['msg']}"


def _within_bounds(error: dict) -> Any:
    """A value that meets the numeric bound an error names (``greater_than: 0`` -> 1)."""
    ctx = error.get("ctx") or {}
    for key, step in (("gt", 1), ("ge", 0), ("lt", -1), ("le", 0)):
        if isinstance(ctx.get(key), int | float):
            return ctx[key] + step
    return None


def _set_aside(data: dict, error: dict) -> bool:
    """Replace a bad value: with one within its bound, else by removing it (its default)."""
    loc = tuple(error["loc"])
    node: Any = data
    for key in loc[:-1]:
        try:
            node = node[key]
        except (KeyError, IndexError, TypeError):
            return False
    if not (isinstance(node, dict) and loc and loc[-1] in node):
        return False
    bounded = _within_bounds(error)
    if bounded is None:
        del node[loc[-1]]
    else:
        node[loc[-1]] = bounded
    return True


def config_problems(raw: dict[str, Any]) -> list[str]:
    """Every problem of a config, cross-field ones included, as ``field.path = value: why``.

    pydantic skips a section's cross-field checks while one of its fields is bad. So each bad
    value is set aside (a value within its bound, or its default, takes its place) and the
    config is validated again, until
    nothing new turns up: a config with a bad value and a bad combination reports both at once.
    """
    data = json.loads(json.dumps(raw, default=str))
    lines: list[str] = []
    dropped: set[tuple] = set()
    for _ in range(10):
        try:
            FullConfig.model_validate(data)
            break
        except ValidationError as err:
            errors = [
                e for e in err.errors()
                if not (e["type"] == "missing" and tuple(e["loc"]) in dropped)
            ]  # fmt: skip
            new = [line for line in map(_error_line, errors) if line not in lines]
            lines += new
            progress = False
            for error in errors:
                if error["type"] != "missing" and _set_aside(data, error):
                    dropped.add(tuple(error["loc"]))
                    progress = True
            if not new or not progress:
                break
    return lines


def load_config(path: str | Path | None = None, **overrides: Any) -> FullConfig:
    """Load a YAML config (or a preset name such as ``demo``) into a validated FullConfig.

    Relative ``data_dir``/``runs_dir`` stay relative to the working directory.
    """
    raw: dict[str, Any] = {}
    source = "defaults"
    if path is not None:
        p = Path(path)
        if not p.exists() and (PRESETS_DIR / f"{path}.yaml").exists():
            p = PRESETS_DIR / f"{path}.yaml"
        if not p.exists():
            raise ConfigError(
                f"{p}: config file not found; pass a YAML file or a preset "
                f"({', '.join(sorted(x.stem for x in PRESETS_DIR.glob('*.yaml')))})"
            )
        source = str(p)
        try:
            raw = yaml.safe_load(p.read_text()) or {}
        except yaml.YAMLError as exc:
            raise ConfigError(f"{p}: not valid YAML: {exc}") from exc
        if not isinstance(raw, dict):
            raise ConfigError(f"{p}: the top level must be a mapping of sections")
    raw.update(overrides)
    try:
        return FullConfig.model_validate(raw)
    except ValidationError:
        problems = config_problems(raw)
        lines = [f"{source}: {len(problems)} problem(s) in the config:", *problems]
        raise ConfigError("\n".join(lines)) from None


def _type_name(annotation: Any) -> str:
    text = getattr(annotation, "__name__", None) if isinstance(annotation, type) else None
    text = text or str(annotation)
    for module in ("typing.", "pathlib.", f"{__name__}."):
        text = text.replace(module, "")
    return text


def describe_fields(model: type[BaseModel], prefix: str = "") -> list[tuple[str, str, str, str]]:
    """``(field path, type, default, description)`` of every field of a section, nested
    sections (and the items of lists of sections) included."""
    rows = []
    for name, info in model.model_fields.items():
        path = f"{prefix}{name}"
        nested = _section_of(info.annotation)
        if info.is_required():
            default = "(required)"
        elif info.default_factory is not None:
            made = info.default_factory()
            if isinstance(made, BaseModel):
                default = "(fields below)"
            elif isinstance(made, list) and made and isinstance(made[0], BaseModel):
                default = f"{len(made)} entries: " + json.dumps([m.model_dump(mode="json",
                    exclude_defaults=True) for m in made])  # fmt: skip
            else:
                default = json.dumps(made, default=str)
        else:
            default = json.dumps(info.default, default=str)
        rows.append((path, _type_name(info.annotation), default, info.description or ""))
        if nested is not None:
            item = "[]." if getattr(info.annotation, "__origin__", None) is list else "."
            rows += describe_fields(nested, path + item)
    return rows


def _section_of(annotation: Any) -> type[BaseModel] | None:
    """The config section a field holds (itself, or as the items of a list), if any."""
    for candidate in (annotation, *getattr(annotation, "__args__", ())):
        if isinstance(candidate, type) and issubclass(candidate, BaseModel):
            return candidate
    return None


def explain_config(section: str | None = None) -> list[tuple[str, str, str, str]]:
    """The rows of ``describe_fields`` for the whole config or one section (``training``).

    Raises:
        ConfigError: No section has that name.
    """
    if section is None:
        return describe_fields(FullConfig)
    fields = FullConfig.model_fields
    nested = _section_of(fields[section].annotation) if section in fields else None
    if nested is None:
        sections = [n for n, f in fields.items() if _section_of(f.annotation) is not None]
        raise ConfigError(f"no config section {section!r}; choose one of {', '.join(sections)}")
    return describe_fields(nested, f"{section}.")
