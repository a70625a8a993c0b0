"""Near-miss phrases for any wake word, found by phoneme edit distance in the CMU dictionary."""

from __future__ import annotations

import functools
import logging
import re
import shutil
import subprocess
import zlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from itertools import product

import numpy as np

logger = logging.getLogger(__name__)

Phones = tuple[str, ...]  # ARPAbet phones without stress digits, e.g. ("HH", "EY")

# Kinds of phrase: a word of the wake word said alone, a phrase with words replaced by words
# that sound alike (the only kind the distance limit applies to), and a caller's own phrase.
PART, SUBSTITUTION, EXTRA = "part", "substitution", "extra"

# espeak-ng IPA -> ARPAbet (matched longest first): how the synthesizers say a phrase, and
# words the CMU dictionary lacks. Unknown symbols are dropped (logged at debug level).
_IPA_TO_ARPABET = {
    "eɪ": "EY", "aɪ": "AY", "ɔɪ": "OY", "aʊ": "AW", "oʊ": "OW", "əʊ": "OW", "ɪə": "IH",
    "eə": "EH", "ʊə": "UH", "tʃ": "CH", "dʒ": "JH", "iː": "IY", "ɑː": "AA", "ɔː": "AO",
    "uː": "UW", "ɜː": "ER", "i": "IY", "ɪ": "IH", "ᵻ": "IH", "ɛ": "EH", "e": "EH", "æ": "AE",
    "ɑ": "AA", "ɒ": "AA", "a": "AA", "ɔ": "AO", "o": "OW", "u": "UW", "ʊ": "UH", "ʌ": "AH",
    "ə": "AH", "ɐ": "AH", "ɚ": "ER", "ɝ": "ER", "p": "P", "b": "B", "t": "T", "d": "D",
    "k": "K", "g": "G", "ɡ": "G", "f": "F", "v": "V", "θ": "TH", "ð": "DH", "s": "S", "z": "Z",
    "ʃ": "SH", "ʒ": "ZH", "h": "HH", "m": "M", "n": "N", "ŋ": "NG", "l": "L", "ɫ": "L",
    "ɹ": "R", "r": "R", "j": "Y", "w": "W", "ɾ": "T", "ʔ": "T",
}  # fmt: skip
_IPA_IGNORED = set("ˈˌː.‿-_ ̩̃'")


@dataclass(frozen=True)
class Confusable:
    """A phrase that sounds like the wake word without being it."""

    text: str
    kind: str  # PART | SUBSTITUTION | EXTRA
    distance: int  # phoneme edits to the wake word, closest CMU dictionary pronunciations
    spoken_distance: int  # phoneme edits as espeak-ng says both (Piper speaks its phonemes too)
    phones: Phones  # espeak-ng's phonemes of the phrase


# --------------------------------------------------------------------------- public API


def generate_confusables(
    wake_word: str,
    max_distance: int = 2,
    count: int = 40,
    seed: int = 0,
    extra: Iterable[str] = (),
) -> list[Confusable]:
    """Near misses of ``wake_word``: its words alone, sound-alike phrases and ``extra`` ones.

    Sound-alike phrases replace one or more words of the wake word by CMU dictionary words so
    that the phrase is 1 to ``max_distance`` phoneme edits from the wake word, both in the
    dictionary's pronunciations and as espeak-ng says them (``"okay commuter"``, ``"hey
    computer"``). ``count`` of them are drawn, in turn from each set of replaced word
    positions, in an order fixed by ``seed``. Words said alone and ``extra`` phrases are kept
    whatever their distance. No phrase contains the wake word, in spelling or in sound.

    Args:
        wake_word: The wake phrase, e.g. ``"okay computer"``.
        max_distance: Largest phoneme edit distance of a sound-alike phrase (at least 1).
        count: Sound-alike phrases to draw (fewer when fewer exist).
        seed: Seed of the draw.
        extra: Hand-written near misses to include (dropped if they contain the wake word).

    Returns:
        Parts first, then ``extra`` phrases, then the drawn sound-alike phrases.

    Raises:
        ValueError: ``max_distance`` is below 1, or the wake word has no letters.
    """
    if max_distance < 1:
        raise ValueError(f"max_distance = {max_distance}: use 1 or more phoneme edits")
    words = normalize(wake_word).split()
    if not words:
        raise ValueError(f"wake word {wake_word!r} has no letters to find near misses for")
    wake = _WakeWord(words)
    fixed = [(w, PART) for w in _parts(words)] + [(normalize(e), EXTRA) for e in extra]
    spoken = spoken_phones([t for t, _ in fixed])
    judged = [wake.judge(t, kind, p) for (t, kind), p in zip(fixed, spoken, strict=True)]
    out = {c.text: c for c in judged if c is not None}
    rng = np.random.default_rng([seed % 2**32, zlib.crc32(" ".join(words).encode())])
    order = _interleave(_substitutions(wake, max_distance), rng)
    for c in _accept(wake, order, count, max_distance):
        out.setdefault(c.text, c)
    logger.info("%d near misses for %r (max distance %d)", len(out), wake_word, max_distance)
    return list(out.values())


def normalize(text: str) -> str:
    """Lower case words of letters, digits and apostrophes, single-spaced."""
    return " ".join(re.sub(r"[^a-z0-9' ]+", " ", text.lower()).split())


def phoneme_distance(a: Sequence[str], b: Sequence[str]) -> int:
    """Levenshtein distance between two phone sequences (insert, delete, substitute = 1)."""
    previous = list(range(len(b) + 1))
    for i, x in enumerate(a, 1):
        current = [i]
        for j, y in enumerate(b, 1):
            current.append(min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (x != y)))
        previous = current
    return previous[-1]


def pronunciations(text: str) -> list[Phones]:
    """The CMU dictionary's pronunciations of a phrase (espeak-ng's for words it lacks)."""
    per_word = [word_pronunciations(w) for w in normalize(text).split()]
    combos = [tuple(p for part in combo for p in part) for combo in product(*per_word)]
    return sorted(set(combos))[:16]  # a few homographs multiply; 16 is plenty to compare


@functools.lru_cache(maxsize=4096)
def word_pronunciations(word: str) -> list[Phones]:
    """Pronunciations of one word: the CMU dictionary's, or espeak-ng's when it has none."""
    return _lexicon().get(word) or [spoken_phones([word])[0]]


def spoken_phones(texts: Sequence[str]) -> list[Phones]:
    """ARPAbet phones of each phrase as espeak-ng (American English) pronounces it.

    Raises:
        RuntimeError: espeak-ng is not installed.
    """
    texts = [normalize(t) for t in texts]
    if not texts:
        return []
    lines = _espeak_ipa("\n".join(texts)).splitlines()
    if len(lines) != len(texts):  # espeak-ng split a line in two: ask phrase by phrase
        lines = [" ".join(_espeak_ipa(t).split()) for t in texts]
    return [_ipa_to_arpabet(line) for line in lines]


# --------------------------------------------------------------------------- the search


class _WakeWord:
    """The wake word's words and pronunciations, and how close a phrase is to them."""

    def __init__(self, words: list[str]) -> None:
        self.words = words
        self.text = " ".join(words)
        self.prons = pronunciations(self.text)
        self.spoken = spoken_phones([self.text])[0]

    def contained_in(self, text: str, spoken: Phones) -> bool:
        """Whether ``text`` (with espeak-ng's ``spoken`` phones) says the wake word."""
        if f" {self.text} " in f" {text} ":
            return True
        heard = [" ".join(p) for p in [*pronunciations(text), spoken]]
        wake = [" ".join(p) for p in [*self.prons, self.spoken]]
        return any(f" {w} " in f" {h} " for h in heard for w in wake)

    def judge(self, text: str, kind: str, spoken: Phones) -> Confusable | None:
        """The phrase with its distances, or None if it says the wake word."""
        if not text or self.contained_in(text, spoken):
            return None
        distance = min(phoneme_distance(p, w) for p in pronunciations(text) for w in self.prons)
        return Confusable(
            text=text, kind=kind, distance=distance,
            spoken_distance=phoneme_distance(spoken, self.spoken), phones=spoken,
        )  # fmt: skip


def _parts(words: list[str]) -> list[str]:
    """Each word of the wake word alone (and, for three or more words, each adjacent pair)."""
    parts = list(words) if len(words) > 1 else []
    if len(words) > 2:
        parts += [" ".join(words[i : i + 2]) for i in range(len(words) - 1)]
    return parts


def _substitutions(wake: _WakeWord, max_distance: int) -> dict[tuple[int, ...], list[str]]:
    """Phrases with some words replaced by dictionary words near them, by replaced positions.

    Only the words' own distances are bounded here (their sum by ``max_distance``); the
    phrase's distances are checked by the caller.
    """
    options = [[(0, word), *_neighbours(word, max_distance)] for word in wake.words]
    found: dict[tuple[int, ...], list[str]] = {}
    for combo in product(*options):
        replaced = tuple(i for i, (_, w) in enumerate(combo) if w != wake.words[i])
        if replaced and sum(d for d, _ in combo) <= max_distance:
            found.setdefault(replaced, []).append(" ".join(w for _, w in combo))
    return {k: sorted(v) for k, v in sorted(found.items())}


def _neighbours(word: str, max_distance: int) -> list[tuple[int, str]]:
    """Dictionary words within ``max_distance`` phoneme edits of ``word``, as (edits, word).

    A word that loses more than two thirds of its phonemes to the edits is another word, not
    a near miss ("hey" -> "see"), so short words get a tighter bound.
    """
    targets = word_pronunciations(word)
    bound = min(max_distance, max(1, 2 * min(len(t) for t in targets) // 3))
    best: dict[str, int] = {}
    ids = _phone_ids()
    for target in targets:
        wanted = np.array([ids.get(p, -1) for p in target])
        for length in range(max(1, len(target) - bound), len(target) + bound + 1):
            words, phones = _lexicon_by_length().get(length, ([], np.zeros((0, length))))
            distances = _distances_to(wanted, phones)
            for i in np.flatnonzero(distances <= bound):
                if words[i] != word:
                    best[words[i]] = min(best.get(words[i], bound), int(distances[i]))
    return sorted((d, w) for w, d in best.items())


def _distances_to(target: np.ndarray, phones: np.ndarray) -> np.ndarray:
    """Levenshtein distance from ``target`` to each row of ``phones`` (phone ids), at once."""
    rows, length = phones.shape
    previous = np.tile(np.arange(length + 1), (rows, 1))
    for i, phone in enumerate(target, 1):
        current = np.empty_like(previous)
        current[:, 0] = i
        for j in range(1, length + 1):
            substitute = previous[:, j - 1] + (phones[:, j - 1] != phone)
            current[:, j] = np.minimum(
                np.minimum(previous[:, j], current[:, j - 1]) + 1, substitute
            )
        previous = current
    return previous[:, length]


def _interleave(groups: dict[tuple[int, ...], list[str]], rng: np.random.Generator) -> list[str]:
    """Every phrase, taking in turn from each group (each shuffled by ``rng``)."""
    queues = [[g[i] for i in rng.permutation(len(g))] for g in groups.values()]
    longest = max((len(q) for q in queues), default=0)
    return [q[i] for i in range(longest) for q in queues if i < len(q)]


def _accept(wake: _WakeWord, order: list[str], count: int, max_distance: int) -> list[Confusable]:
    """The first ``count`` phrases of ``order`` within 1 to ``max_distance`` edits.

    Both distances count: the dictionary's and espeak-ng's (asked in batches of phrases).
    """
    out: list[Confusable] = []
    batch = max(4 * count, 64)
    for start in range(0, len(order), batch):
        chunk = order[start : start + batch]
        for text, spoken in zip(chunk, spoken_phones(chunk), strict=True):
            c = wake.judge(text, SUBSTITUTION, spoken)
            if c is not None and 1 <= min(c.distance, c.spoken_distance):
                if max(c.distance, c.spoken_distance) <= max_distance:
                    out.append(c)
            if len(out) == count:
                return out
    return out


# --------------------------------------------------------------------------- pronunciations


@functools.lru_cache(maxsize=1)
def _lexicon() -> dict[str, list[Phones]]:
    """The CMU dictionary: plain lower-case words (no abbreviations with dots, no apostrophes)."""
    import pronouncing

    pronouncing.init_cmu()
    out: dict[str, set[Phones]] = {}
    for word, phones in pronouncing.pronunciations:
        if re.fullmatch(r"[a-z]+", word) and (len(word) > 1 or word in ("a", "i")):
            out.setdefault(word, set()).add(tuple(re.sub(r"\d", "", phones).split()))
    return {w: sorted(p) for w, p in out.items()}


@functools.lru_cache(maxsize=1)
def _phone_ids() -> dict[str, int]:
    """A small integer for each ARPAbet phone of the dictionary."""
    phones = sorted({p for prons in _lexicon().values() for pron in prons for p in pron})
    return {p: i for i, p in enumerate(phones)}


@functools.lru_cache(maxsize=1)
def _lexicon_by_length() -> dict[int, tuple[list[str], np.ndarray]]:
    """The dictionary's pronunciations by phone count: (word of each row, phone ids)."""
    ids = _phone_ids()
    rows: dict[int, tuple[list[str], list[list[int]]]] = {}
    for word, prons in _lexicon().items():
        for pron in prons:
            words, phones = rows.setdefault(len(pron), ([], []))
            words.append(word)
            phones.append([ids[p] for p in pron])
    return {n: (w, np.array(p, dtype=np.int16)) for n, (w, p) in rows.items()}


def _espeak_ipa(text: str) -> str:
    """espeak-ng's IPA transcription of ``text`` (one output line per input line)."""
    if shutil.which("espeak-ng") is None:
        raise RuntimeError(
            "espeak-ng is needed to pronounce near-miss phrases and is not installed; run "
            "`make system-deps` or `apt-get install espeak-ng`"
        )
    return subprocess.run(
        ["espeak-ng", "-q", "--ipa", "-v", "en-us"],
        input=text, capture_output=True, text=True, check=True, timeout=120,
    ).stdout  # fmt: skip


def _ipa_to_arpabet(ipa: str) -> Phones:
    """ARPAbet phones of an IPA line from espeak-ng (stress and length marks dropped)."""
    phones, i = [], 0
    symbols = sorted(_IPA_TO_ARPABET, key=len, reverse=True)
    text = ipa.strip()
    while i < len(text):
        match = next((s for s in symbols if text.startswith(s, i)), None)
        if match is not None:
            phones.append(_IPA_TO_ARPABET[match])
            i += len(match)
            continue
        if text[i] not in _IPA_IGNORED and not text[i].isspace():
            logger.debug("IPA symbol %r in %r has no ARPAbet phone; dropped", text[i], ipa)
        i += 1
    return tuple(phones)
