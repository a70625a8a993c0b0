"""Where the audio is: the data folder, extra sources and feature sets, the demo data set."""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar, Literal

from pydantic import Field, model_validator

from mww_core.config.base import Section

# The engines a demo data set may add to Piper and espeak-ng, in planning order, with their
# names: each has <engine>_positives and <engine>_share fields below.
ADDED_ENGINES = {"pico": "Pico", "mbrola": "MBROLA", "rhvoice": "RHVoice"}


# The demo builder names each clip by its engine: "piper_0001.wav", "espeak_0001.wav".
DEMO_ENGINE_PREFIXES = {
    "piper": "piper", "espeak-ng": "espeak", "pico": "pico", "mbrola": "mbrola",
    "rhvoice": "rhvoice",
}  # fmt: skip


class DemoDataConfig(Section):
    """Size and seed of the bundled, offline demo data set for any wake word."""

    _quiet_defaults: ClassVar[dict[str, Any]] = {
        "validation_conditions": False,
        "training_paused_share": None,
        "training_min_phrase_distance": None,
        "training_paused_near_miss_share": None,
        "training_paused_sentence_share": None,
        "training_espeak_speed": None,
        "test_paused_near_misses": 0,
        "validation_paused_near_misses": 0,
        "more_noise_kinds": False,
        "ambient_one_engine_each": False,
    }

    piper_positives: int = Field(240, ge=0, description="Positive clips from the Piper voice.")
    espeak_positives: int = Field(240, ge=0, description="Positive clips from espeak-ng voices.")
    pico_positives: int = Field(
        0,
        ge=0,
        description="Positive clips from SVOX Pico's two voices (en-US and en-GB, both women's; "
        "Debian's libttspico-utils, which `make system-deps` installs), at pitches and speeds "
        "drawn per split like Piper's settings: a third engine, and the only women's voices "
        "besides espeak-ng's female variants. Needs pico_share > 0, so that Pico says "
        "negatives too.",
    )
    pico_share: float = Field(
        0.0,
        ge=0,
        le=1,
        description="Share of the negative clips (near misses and read sentences) and of the "
        "ambient and mining talk said by SVOX Pico instead of Piper and espeak-ng (who split "
        "the rest as before). Without it a model would learn that Pico's voices only ever say "
        "the wake word. 0 keeps Pico out of the negatives.",
    )
    mbrola_positives: int = Field(
        0,
        ge=0,
        description="Positive clips from MBROLA's four English voices, said through espeak-ng "
        "(mb-us1, a woman's; mb-us2 and mb-us3, American men's; mb-en1, a British man's: Debian's "
        "mbrola voices, which `make system-deps` installs). MBROLA joins diphones cut from "
        "recordings of real speakers, a kind of speech neither espeak-ng's formants nor the "
        "neural Piper has. Pitches and speeds are drawn per split like Pico's. Needs "
        "mbrola_share > 0, so that MBROLA says negatives too.",
    )
    mbrola_share: float = Field(
        0.0,
        ge=0,
        le=1,
        description="Share of the negative clips and of the ambient and mining talk said by "
        "MBROLA's voices, taken like pico_share (the shares of the engines not test-only add up "
        "to at most 1). 0 keeps MBROLA "
        "out of the negatives.",
    )
    mbrola_test_only: bool = Field(
        False,
        description="MBROLA says test clips only: its mbrola_positives wake words, and "
        "negatives and ambient talk mbrola_share as many as the other engines' in the test "
        "(on top of theirs), all in the test split, at its "
        "voices' ordinary settings. Training and validation never hear it, as an independent "
        "check's voices are never heard, and are the same clips as without it: the report's "
        "MBROLA voice groups are then recall on an engine the model never heard.",
    )
    rhvoice_positives: int = Field(
        0,
        ge=0,
        description="Positive clips from RHVoice's English voices bdl (a man's) and clb (a "
        "woman's): statistical parametric (HTS) models of two recorded CMU ARCTIC speakers, "
        "with a front end of their own (Debian's rhvoice-english, which `make system-deps` "
        "installs). Its slt and alan voices are never used: flite and festival ship those "
        "speakers, and they are kept for an independent check. Pitches and rates are drawn "
        "per split like Pico's. Needs rhvoice_share > 0, so that RHVoice says negatives too.",
    )
    rhvoice_share: float = Field(
        0.0,
        ge=0,
        le=1,
        description="Share of the negative clips and of the ambient and mining talk said by "
        "RHVoice's voices, taken like pico_share (with the other shares not test-only, at most "
        "1). "
        "0 keeps RHVoice out of the negatives.",
    )
    rhvoice_test_only: bool = Field(
        False,
        description="RHVoice says test clips only, like mbrola_test_only: its rhvoice_positives "
        "wake words, and negatives and ambient talk rhvoice_share as many as the other engines' "
        "in the test (on top of theirs), at its voices' ordinary settings. Its rows in the "
        "report are then recall on an engine, and a kind of synthesis (statistical parametric, "
        "as flite's and festival's voices are), the model never heard.",
    )
    training_paused_share: float | None = Field(
        None,
        ge=0,
        le=1,
        description="Share of training's wake-word clips said with a pause inside (\"hey, "
        'jarvis": the engines pause at the comma); the others are said in one breath ("hey '
        'jarvis", "hey jarvis!"), as people mostly say a wake word. None: the wordings take '
        "turns (a third paused). The clips chosen to change are drawn from the seed; every "
        "other clip, and validation and test, keep their texts. A one-word wake word has no "
        "paused wording, so the share does not apply to it.",
    )
    training_min_phrase_distance: int | None = Field(
        None,
        ge=1,
        description="Training's near misses (its near-miss clips, and the near-miss sentences of "
        "its ambient audio and the mining corpus) say only phrases at least this many phonemes "
        'from the wake word as espeak-ng says them: 2 leaves out slips ("kay jarvis", "hey '
        'marvis"), the wake word said carelessly, which the evaluation counts apart '
        "(training.near_miss_min_distance). A clip that said a closer phrase says one drawn "
        "from the others instead (from the seed); validation and test keep every text. None: "
        "training hears every near-miss phrase.",
    )
    training_paused_near_miss_share: float | None = Field(
        None,
        ge=0,
        le=1,
        description="Share of training's near-miss clips of two or more words said with a "
        'pause after the first ("hey, travis"), as a third of its wake words are ("hey, '
        'jarvis"): without paused near misses a pause is found only in wake words, and a model '
        "may take the pause for the wake word. The clips chosen are drawn from the seed; only "
        "their texts change, and validation and test keep theirs. None: every near miss is said "
        "in one breath.",
    )
    training_paused_sentence_share: float | None = Field(
        None,
        ge=0,
        le=1,
        description="Share of the near-miss sentences of training's ambient audio and of the "
        'mining corpus whose near miss is said with a pause ("Hey, travis, the kettle is '
        'boiling"), drawn from the seed, so that mining can find the windows where a model '
        "fires on a pause. None: none is.",
    )
    training_espeak_speed: tuple[int, int] | None = Field(
        None,
        description="espeak-ng's speaking rates (words a minute) for training's clips: its wake "
        "words, negatives, and its talk in training's ambient audio and the mining corpus. "
        "Every split draws 140-210; training's drawn rates are stretched onto this range (the "
        "same clips, each faster or slower in proportion), so that training hears wake words as "
        "short as fast talkers and diphone voices say them (MBROLA's last 0.5-0.8 s, espeak-ng's "
        "at 210 about 0.7 s). Validation and test keep 140-210. Above about 250 espeak-ng drops "
        "the pause at a comma, so its paused wake words and near misses run together. None: "
        "training draws 140-210 too.",
    )
    test_paused_near_misses: int = Field(
        0,
        ge=0,
        description="Near-miss clips added to the test split, half said by Piper and half by "
        "espeak-ng at the test's voices and settings, with a pause after the first word (\"hey, "
        'travis"): '
        "a model that takes a pause for the wake word fires on them. Planned after every other "
        "clip, so every other clip keeps its draws.",
    )
    validation_paused_near_misses: int = Field(
        0,
        ge=0,
        description="Near-miss clips added to the validation split as test_paused_near_misses "
        "adds them to the test's (at validation's voices and settings), so that the best step "
        "and the manifest cutoff count near misses said with a pause among validation's near "
        "misses (training.max_near_miss_rate). Planned after the test's, so every other clip "
        "keeps its draws.",
    )
    command_share: float = Field(
        0.0,
        ge=0,
        le=1,
        description="Share of training's and validation's wake-word clips said with a request "
        'after them in one breath ("hey jarvis, open the blinds"), as users say them; the '
        'test\'s "command" condition uses requests of its own. dataset.json gives each such '
        "clip's word_end_s (the end of the wake word, found at the pause before the request); "
        "training windows end there, with the request running on after.",
    )
    near_miss_negatives: int = Field(
        300, ge=0, description="Clips of phrases that sound like the wake word."
    )
    near_miss_phrases: int = Field(
        40,
        ge=0,
        description="Near-miss phrases generated for the wake word by replacing its words with "
        "dictionary words that sound alike (mww_core.demo_data.confusables). Each word of the "
        "wake word said alone comes on top, and for hey jarvis a hand-written list too. They are "
        "said in the near-miss clips and, inside everyday sentences, in the ambient and mining "
        "audio.",
    )
    near_miss_max_phoneme_distance: int = Field(
        2,
        ge=1,
        description="Largest phoneme edit distance (insertions, deletions, substitutions) "
        "between a generated near-miss phrase and the wake word, in the CMU dictionary's "
        "pronunciations and as espeak-ng says them. 1 or 2 sound alike; more drifts away.",
    )
    speech_negatives: int = Field(150, ge=0, description="Clips of read-aloud sentences.")
    validation_extra_positives: int = Field(
        0,
        ge=0,
        description="Wake-word clips added to validation alone, half from each engine, said "
        "by validation's voices and settings. They are planned after every other clip, so "
        "training and test keep every clip they had: more validation clips steady the choice "
        "of the best step, phase and cutoff without redrawing the rest of the data set.",
    )
    validation_conditions: bool = Field(
        False,
        description="Validation's wake words are heard in conditions, as the test's are: "
        "in turn clean, noisy (0-20 dB SNR), reverberant, far field (quiet, -35 to -25 dBFS) "
        "and pitch-shifted. They are made of what training knows (its white, pink and brown "
        "noise, appliances, knocks and beeps; new rooms of its sizes and rir_rt60_s; shifts of "
        "2-3.5 semitones, within its range), so the "
        "test alone hears held-out noises, rooms and shifts. Every clip's voice, text and "
        "settings stay as they were. On the demo (six seeds) it changed the shipped step or "
        "phase for two and gained nothing at the shipped cutoffs, so the demo keeps clean "
        'validation (README, "Validation heard in conditions").',
    )
    validation_extra_near_misses: int = Field(
        0,
        ge=0,
        description="Near-miss clips added to validation alone, like validation_extra_positives"
        ": with 30 near-miss clips a 5% limit (evaluation.max_near_miss_rate) allows one false "
        "accept, so one clip moves the cutoff.",
    )
    ambient_minutes: dict[str, float] = Field(
        default_factory=lambda: {"train": 20.0, "validation": 30.0, "test": 60.0},
        description="Minutes of long ambient audio (noise, babble, speech, near misses) per "
        "split. One false activation in 30 minutes is 2 FAH, in 60 minutes 1 FAH: less audio "
        "cannot tell a model that meets a 1 FAH target from one that does not.",
    )
    ambient_near_misses_per_minute: dict[str, float] = Field(
        default_factory=lambda: {"train": 1.0, "validation": 0.1, "test": 0.1},
        description="Near-miss sentences ('Kay Jarvis, the soup is ready') said in each "
        "split's ambient audio, per minute. Training hears many, to learn from; validation "
        "and test hear them as often as a home might (6 an hour), so that their FAH measures "
        "everyday audio while the near-miss clips measure near misses (the cutoff can be held "
        "to evaluation.max_near_miss_rate of those). The mining corpus says two a minute.",
    )
    ambient_one_engine_each: bool = Field(
        False,
        description="Each training ambient recording holds one engine's talk (its babble, "
        "speech and talk over music), as each mining recording does, instead of every "
        "engine's. The talk is the same utterances, grouped by engine. A model trained on some "
        "engines only (python -m bench.generalization) then keeps their recordings: with every "
        "recording mixed it keeps none and its phase 1 hears almost no talk at all.",
    )
    mining_minutes: float = Field(
        60.0,
        ge=0,
        description="Minutes of talk-heavy recordings in train/mining/ (train voices, their own "
        "utterances, two near misses a minute) that only hard-negative mining scans.",
    )
    mining_piper_share: float = Field(
        0.0,
        ge=0,
        le=1,
        description="Share of the mining corpus's utterances said by the Piper voice (at "
        "training's settings) instead of espeak-ng's training voices. Each mining recording "
        "(one a minute) is one engine's talk, so a corpus of one recording stays espeak-ng's. "
        "0 keeps the corpus espeak-ng only.",
    )
    piper_accent_share: float = Field(
        0.0,
        ge=0,
        le=1,
        description="Share of training's Piper clips (and the mining corpus's) phonemized with "
        "the accent of one of training's other espeak-ng base voices (en, en-gb-x-rp, "
        "en-gb-x-gbcwmd unless held out) instead of the voice's own en-us: one neural voice "
        "saying the wake word the ways training's other voices say it. Validation and test "
        "keep the voice's own accent, and accents held out for them are never used.",
    )
    espeak_female_share: float | None = Field(
        None,
        ge=0,
        le=1,
        description="Share of training's espeak-ng clips (and the mining corpus's) said in a "
        "variant that espeak-ng marks female (f1-f5, Alicia, belinda, ...). None keeps the "
        "voices as dealt: about one clip in five, as one curated variant in five is female. "
        "Validation and test keep their voices.",
    )
    split_fractions: dict[str, float] = Field(
        default_factory=lambda: {"train": 0.7, "validation": 0.1, "test": 0.2},
        description="Share of the clips in each split; no utterance appears in two splits.",
    )
    validation_espeak_voices: list[str] = Field(
        default_factory=lambda: ["en-gb-x-gbclan"],
        description="espeak-ng base voices (of mww_core.demo_data.ESPEAK_VOICES) heard in "
        "validation and never in training, beside the training voices with variants of "
        "validation's own: picking the best model then rewards voices it never heard.",
    )
    test_espeak_voices: list[str] = Field(
        default_factory=lambda: ["en-us-nyc", "en-029", "en-gb-scotland"],
        description="espeak-ng base voices heard only in the test split, with variants of its "
        "own. The test's Piper speech also comes from settings (length, noise, formant shift) "
        "and its positives from rooms and noises that training and validation never use.",
    )
    rirs: int = Field(
        24, ge=0, description="Room impulse responses simulated with pyroomacoustics."
    )
    rir_rt60_s: tuple[float, float] = Field(
        (0.15, 1.1),
        description="Range of the simulated rooms' reverberation time (RT60). Rooms are 3-10 m "
        "long and the talker stands anywhere at least 0.7 m from the microphone, so long RT60s "
        "with a far talker give speech that is mostly reverberation, as a device across an "
        "open-plan room hears it.",
    )
    noise_clips: int = Field(16, ge=0, description="Background noise clips for augmentation.")
    more_noise_kinds: bool = Field(
        False,
        description="Make the noise clips of six more kinds besides coloured noise, babble, "
        "music, appliances, knocks and beeps: traffic, wind, applause, typing, birdsong and "
        "sustained synthesizer chords (mww_core.demo_data.household.MORE_NOISE_KINDS), in turn "
        "with the others. None is made the way a test noise is.",
    )
    seed: int = Field(1234, description="Seed for every random choice in the demo data.")

    def uses(self, engine: str) -> bool:
        """Whether ``engine`` (one of ``ADDED_ENGINES``) says any clip of the data set."""
        return getattr(self, f"{engine}_positives") > 0 or getattr(self, f"{engine}_share") > 0

    def engines_used(self) -> list[str]:
        """The engines of ``ADDED_ENGINES`` that say clips of the data set, in their order."""
        return [engine for engine in ADDED_ENGINES if self.uses(engine)]

    def test_only(self, engine: str) -> bool:
        """Whether ``engine`` (mbrola, rhvoice) says test clips only."""
        return bool(getattr(self, f"{engine}_test_only", False))

    @model_validator(mode="after")
    def _engines_say_negatives(self) -> DemoDataConfig:
        for engine, name in ADDED_ENGINES.items():
            positives = getattr(self, f"{engine}_positives")
            share = getattr(self, f"{engine}_share")
            if positives > 0 and share <= 0:
                raise ValueError(
                    f"data.demo.{engine}_positives is {positives} but data.demo.{engine}_share "
                    f"is 0: {name} would say only the wake word, and the model would learn its "
                    f"voices rather than the word. Set {engine}_share (0.2 says a fifth of the "
                    f"negatives in {name}'s voices) or {engine}_positives to 0"
                )
        # A test-only engine's share comes on top of the others' test clips, not out of them.
        taken = {e: getattr(self, f"{e}_share") for e in ADDED_ENGINES if not self.test_only(e)}
        if sum(taken.values()) > 1:
            said = ", ".join(f"{engine}_share ({share})" for engine, share in taken.items())
            raise ValueError(
                f"data.demo {said} add up to more than 1: they are shares of the same "
                "negatives and talk; lower one"
            )
        return self

    @model_validator(mode="after")
    def _espeak_speed_range(self) -> DemoDataConfig:
        if self.training_espeak_speed is not None:
            low, high = self.training_espeak_speed
            if not 80 <= low < high <= 450:
                raise ValueError(
                    f"data.demo.training_espeak_speed {list(self.training_espeak_speed)}: give "
                    "[low, high] words a minute with 80 <= low < high <= 450 (espeak-ng's own "
                    "rate is 175; every split draws 140-210)"
                )
        return self

    @model_validator(mode="after")
    def _rt60_range(self) -> DemoDataConfig:
        low, high = self.rir_rt60_s
        if not 0.05 <= low <= high <= 3.0:
            raise ValueError(
                f"data.demo.rir_rt60_s {list(self.rir_rt60_s)}: give [low, high] seconds with "
                "0.05 <= low <= high <= 3.0 (homes lie around 0.2-0.8 s)"
            )
        return self


class AudioSourceConfig(Section):
    """An extra folder of audio (wav/flac/ogg/mp3, any rate or channel count) for one split."""

    path: Path = Field(description="Folder of audio files, searched recursively.")
    kind: Literal["positive", "negative", "ambient", "mining"] = Field(
        description="positive = wake-word clips; negative = other clips; ambient = long "
        "recordings cut into windows every features.ambient_hop_s; mining = long negative "
        "recordings (podcasts, TV) that only hard-negative mining scans (train split only)."
    )
    split: Literal["train", "validation", "test"] = Field("train", description="Which split.")
    copies: int | None = Field(
        None, ge=1, description="Augmented copies per window; default from augmentation."
    )

    @model_validator(mode="after")
    def _mining_is_train(self) -> AudioSourceConfig:
        if self.kind == "mining" and self.split != "train":
            raise ValueError(
                f"{self.path}: kind 'mining' folders are scanned for hard negatives of the train "
                f"split only; set split: train (got {self.split})"
            )
        return self


class FeatureSetConfig(Section):
    """Precomputed microWakeWord features (RaggedMmap folders from mmap_ninja) to import."""

    path: Path = Field(description="A RaggedMmap folder, or a folder holding several.")
    weight_class: Literal["negative", "hard_negative"] = Field(
        "negative", description="Loss weight class of the imported (negative) windows."
    )
    hop_frames: int = Field(
        100, ge=1, description="Hop between windows cut from spectrograms longer than a window."
    )


class DataConfig(Section):
    """Where the audio comes from.

    ``data_dir`` holds ``{train,validation,test}/{positive,negative,ambient}/*.wav`` plus
    ``rirs/`` and ``noise/`` folders used by augmentation.
    """

    wake_word: str = Field("hey jarvis", min_length=1, description="The phrase to detect.")
    data_dir: Path = Field(Path("data/demo"), description="Root folder of the audio data set.")
    build_demo: bool = Field(
        True, description="Build the bundled demo data set into data_dir when it is missing."
    )
    demo: DemoDataConfig = Field(
        default_factory=DemoDataConfig,
        description="Sizes and seed of the bundled demo data set (with build_demo: true).",
    )
    sources: list[AudioSourceConfig] = Field(
        default_factory=list, description="Extra audio folders, besides data_dir's layout."
    )
    feature_sets: list[FeatureSetConfig] = Field(
        default_factory=list,
        description="microWakeWord feature sets imported as training negatives.",
    )
