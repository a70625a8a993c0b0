"""Typed pipeline configuration: pydantic sections, YAML loading and presets.

One module per group of sections (``data``, ``audio``, ``model``, ``training``) and ``full``
(the whole config, loading, every problem at once, ``--explain-config``).
"""

from mww_core.config.audio import (  # noqa: F401
    AugmentationConfig,
    FeaturesConfig,
)
from mww_core.config.base import (  # noqa: F401
    Section,
    probability,
    section,
    span,
)
from mww_core.config.data import (  # noqa: F401
    AudioSourceConfig,
    DataConfig,
    DemoDataConfig,
    FeatureSetConfig,
)
from mww_core.config.full import (  # noqa: F401
    PRESETS_DIR,
    ConfigError,
    FullConfig,
    config_problems,
    describe_fields,
    explain_config,
    load_config,
)
from mww_core.config.model import (  # noqa: F401
    DEFAULT_PRESET,
    MODEL_PRESETS,
    ModelConfig,
)
from mww_core.config.training import (  # noqa: F401
    ClassWeights,
    EvaluationConfig,
    ExportConfig,
    FineTuneConfig,
    MiningConfig,
    PerformanceConfig,
    PhaseConfig,
    RetrainConfig,
    SpecAugmentConfig,
    TrainingConfig,
    VtlpConfig,
)
