"""The bundled offline demo data set: Piper and espeak-ng speech, simulated rooms and noise.

A build runs, in order: ``corpus`` (what is said, in which voices), ``plan`` (every utterance
and its split), ``tts`` (espeak-ng and Piper), ``rooms`` (impulse responses, noise), ``clips``
(the clips as written), ``ambient`` (long recordings and the mining corpus) and ``build`` (the
steps, ``dataset.json``). ``conditions`` holds the test split's held-out conditions and
``confusables`` the near misses of any wake word. Names with a leading underscore are internal
to this package.
"""

from mww_core.demo_data.build import (
    DEMO_DATA_VERSION,
    MANIFEST_NAME,
    build_demo_dataset,
    demo_fingerprint,
)
from mww_core.demo_data.corpus import (
    COMMANDS,
    ESPEAK_VOICES,
    NEAR_MISS_PHRASES,
    SENTENCES,
    near_miss_phrases,
)
from mww_core.demo_data.plan import MINING_POOL, SPLITS, held_out_voices
from mww_core.demo_data.rooms import TEST_ROOMS, TRAIN_ROOM_M

__all__ = [
    "COMMANDS",
    "DEMO_DATA_VERSION",
    "ESPEAK_VOICES",
    "MANIFEST_NAME",
    "MINING_POOL",
    "NEAR_MISS_PHRASES",
    "SENTENCES",
    "SPLITS",
    "TEST_ROOMS",
    "TRAIN_ROOM_M",
    "build_demo_dataset",
    "demo_fingerprint",
    "held_out_voices",
    "near_miss_phrases",
]
