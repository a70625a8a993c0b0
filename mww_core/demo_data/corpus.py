"""What the demo says, and in which voices: espeak-ng voices, sentences, near misses."""

from __future__ import annotations

import functools
import re
import subprocess
from pathlib import Path

from mww_core.config import DataConfig
from mww_core.demo_data.confusables import Confusable, generate_confusables

ESPEAK_VOICES = (
    "en-us", "en", "en-gb-scotland", "en-gb-x-rp", "en-029", "en-us-nyc",
    "en-gb-x-gbclan", "en-gb-x-gbcwmd",
)  # fmt: skip
# Human-sounding variants from espeak-ng-data/voices/!v; robotic, whispered, croaky, "Demonic"
# and similar ones are left out so every positive clearly sounds like a person saying the phrase.
ESPEAK_VARIANTS = (
    "m1", "m2", "m3", "m4", "m5", "m6", "m7", "m8", "f1", "f2", "f3", "f4", "f5",
    "klatt", "klatt2", "klatt3", "klatt4", "klatt5", "klatt6", "Alex", "Alicia", "Andrea",
    "Andy", "Annie", "AnxiousAndy", "Denis", "Diogo", "Gene", "Gene2", "Henrique", "Hugo",
    "Jacky", "Lee", "Marco", "Mario", "Michael", "Mike", "Nguyen", "RicishayMax",
    "RicishayMax2", "RicishayMax3", "Storm", "adam", "anika", "announcer", "antonio", "aunty",
    "belinda", "benjamin", "boris", "caleb", "david", "ed", "edward", "edward2", "grandma",
    "grandpa", "gustave", "iven", "iven2", "iven3", "iven4", "john", "kaukovalta", "linda",
    "marcelo", "max", "michel", "miguel", "norbert", "pablo", "paul", "pedro", "quincy", "rob",
    "robert", "sandro", "shelby", "steph", "steph2", "steph3", "travis", "victor", "zac",
)  # fmt: skip

# Hand-written phrases that sound like "hey jarvis" but are not it, used besides the generated
# ones (confusables.py) for that wake word.
NEAR_MISS_PHRASES = (
    "hey travis", "jarvis", "hey service", "hey marvis", "hey harvest", "hey jars",
    "hey darling", "hey there", "harvest", "hey jealous", "a jar of this", "hey marvin",
    "hey mavis", "hey davis", "hey harvey", "hey java", "hey nervous", "hey jasmine",
    "hey james", "hey artist", "they jar this", "hey purpose", "hey jack", "say harvest",
    "hey charles", "hey carpet",
)  # fmt: skip

# Neutral read-aloud sentences (negatives and ambient speech). None may contain the wake word.
SENTENCES = (
    "The kettle is boiling in the kitchen.",
    "Please close the window before you leave.",
    "We should buy more bread tomorrow.",
    "The train was late again this morning.",
    "My sister lives near the old harbour.",
    "Turn left at the next traffic light.",
    "The garden needs water after this heat.",
    "He forgot his umbrella at the office.",
    "Dinner will be ready in ten minutes.",
    "The children are playing in the park.",
    "I think the meeting starts at noon.",
    "Could you pass me the salt, please?",
    "The library closes early on Sundays.",
    "She painted the fence a pale green.",
    "Our neighbours have a very loud dog.",
    "The soup tastes better with some pepper.",
    "We watched a film about the ocean.",
    "Remember to charge your phone tonight.",
    "The bus stop is around the corner.",
    "It might snow later this week.",
    "The cat is sleeping on the sofa.",
    "He reads the newspaper every morning.",
    "Let us meet outside the cinema.",
    "The printer has run out of paper.",
    "My grandmother bakes the best apple pie.",
    "The store sells fresh fish on Fridays.",
    "Take the blue folder to the front desk.",
    "The lights in the hallway are flickering.",
    "I left my keys on the kitchen table.",
    "The river is high after the rain.",
    "Wash your hands before we eat.",
    "The concert was sold out in an hour.",
    "He plays the piano quite well.",
    "We need a new battery for the clock.",
    "The baby finally fell asleep.",
    "Put the milk back in the fridge.",
    "The mountains look beautiful at sunset.",
    "Her flight lands at half past six.",
    "The coffee machine is broken again.",
    "Let me know when you are ready.",
    "The museum has a new exhibition.",
    "Our team won the match last night.",
    "The bakery opens at seven.",
    "Please speak a little more slowly.",
    "The car needs a service soon.",
    "I would like a cup of tea.",
    "The shop on the corner sells flowers.",
    "We walked along the beach all afternoon.",
    "The window in the bedroom is stuck.",
    "Tomorrow will be cloudy with some sun.",
    "He is learning to ride a bicycle.",
    "The kids built a castle of sand.",
    "She keeps her notes in a small book.",
    "The heating comes on at six.",
    "Dogs are not allowed in the shop.",
    "The parcel arrived this afternoon.",
    "I cannot find the remote control.",
    "The soup is too hot to eat.",
    "Our holiday starts next Saturday.",
    "The fridge is making a strange noise.",
    "Please switch off the lights upstairs.",
    "The recipe needs two eggs and some flour.",
    "We planted tomatoes by the wall.",
    "The clock in the hall is five minutes fast.",
)

# Requests said after the wake word in the test's "command" condition.
COMMANDS = (
    "turn on the lights", "what time is it", "set a timer for ten minutes", "play some music",
    "turn off the kitchen lights", "what is the weather like today", "stop the music",
    "lock the front door",
)  # fmt: skip

# Requests said after the wake word by training's and validation's clips
# (data.demo.command_share): none of them is one of the test's COMMANDS.
TRAINING_COMMANDS = (
    "open the blinds", "how warm is it outside", "add milk to the shopping list",
    "turn the volume down", "call mum", "dim the living room lights", "start the vacuum",
    "what is on my calendar", "skip this song", "close the garage door", "remind me at six",
    "turn on the fan", "read me the news", "pause the film", "how long until sunset",
    "switch on the heating", "tell me a joke", "good night", "set an alarm for seven",
    "turn off the bedroom lamp",
)  # fmt: skip


def near_miss_phrases(data: DataConfig) -> list[Confusable]:
    """The demo's near misses of ``data.wake_word`` (hand-written ones too for "hey jarvis").

    Args:
        data: The data config (wake word, ``demo`` distance limit, phrase count and seed).

    Returns:
        Phrases that sound like the wake word without containing it, with their distances.
    """
    demo = data.demo
    return generate_confusables(
        data.wake_word,
        max_distance=demo.near_miss_max_phoneme_distance,
        count=demo.near_miss_phrases,
        seed=demo.seed,
        extra=NEAR_MISS_PHRASES if _normalize(data.wake_word) == "hey jarvis" else (),
    )


def capitalized(phrase: str) -> str:
    """A near-miss phrase as a sentence says it: ``"hey travis"`` -> ``"Hey travis"``."""
    return phrase[0].upper() + phrase[1:]


def _near_miss_sentences(phrases: list[str], sentences: list[str]) -> list[str]:
    """Near-miss phrases said inside everyday sentences: as a greeting, or after a remark.

    ``"Hey travis, the kettle is boiling in the kitchen."`` and
    ``"The kettle is boiling in the kitchen. Hey travis."``
    """
    out = []
    for phrase in phrases:
        said = capitalized(phrase)
        for sentence in sentences:
            lower = sentence if sentence.startswith("I ") else sentence[0].lower() + sentence[1:]
            out.append(f"{said}, {lower}")
            out.append(f"{sentence} {said}.")
    return out


def _wake_word_variants(wake_word: str) -> list[str]:
    words = wake_word.strip().split()
    variants = [" ".join(words), " ".join(words) + "!"]
    if len(words) > 1:
        variants.insert(1, f"{words[0]}, {' '.join(words[1:])}")
    return variants


def _normalize(text: str) -> str:
    return " ".join(re.sub(r"[^a-z0-9' ]+", " ", text.lower()).split())


def _mentions(sentence: str, wake_word: str) -> bool:
    """Whether a sentence contains the wake word, "jarvis", or a distinctive wake-word word."""
    padded = f" {_normalize(sentence)} "
    words = [w for w in wake_word.split() if len(w) >= 4 and w not in {"okay", "hello"}]
    return any(f" {w} " in padded for w in [wake_word, "jarvis", *words])


def _variants_dir() -> Path | None:
    """espeak-ng's folder of voice variants (``voices/!v``), None without espeak-ng."""
    try:
        text = subprocess.run(
            ["espeak-ng", "--version"], capture_output=True, text=True, check=True
        ).stdout
        return Path(text.split("Data at:")[1].strip()) / "voices" / "!v"
    except (OSError, subprocess.CalledProcessError, IndexError):
        return None


def _available_variants() -> list[str]:
    """The curated variants present in this espeak-ng installation."""
    folder = _variants_dir()
    if folder is None:
        return list(ESPEAK_VARIANTS)
    present = [v for v in ESPEAK_VARIANTS if (folder / v).is_file()]
    return present or list(ESPEAK_VARIANTS)


@functools.cache
def _female_variants() -> frozenset[str]:
    """The curated variants that espeak-ng's own files mark ``gender female``."""
    folder = _variants_dir()
    if folder is None:
        return frozenset()
    female = set()
    for variant in ESPEAK_VARIANTS:
        try:
            lines = (folder / variant).read_text(errors="replace").lower().splitlines()
        except OSError:
            continue
        if any(line.split()[:2] == ["gender", "female"] for line in lines):
            female.add(variant)
    return frozenset(female)


def speaker_gender(generator: str, voice: str) -> str:
    """The speaker's gender, "female" or "male": an espeak-ng voice's from its variant's file;
    the Piper voice (joe) is a man's, SVOX Pico's two voices are women's, MBROLA's us1 and
    RHVoice's clb are women's and their others men's."""
    if generator == "pico" or (generator, voice) in (("mbrola", "mb-us1"), ("rhvoice", "clb")):
        return "female"
    if generator == "espeak-ng" and voice.partition("+")[2] in _female_variants():
        return "female"
    return "male"
