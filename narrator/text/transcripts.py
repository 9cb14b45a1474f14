"""A take's transcript judged against the text it was sent, as a proof-listener would, not as a score.

Both sides are cut into words and each word into a key that drops what a listener would not call a mistake: case,
punctuation, quotes and apostrophes, hyphens (a compound is its words), numbers written as digits or as words,
British and American spellings (both sides are spelled one way, so "colour" and "color" meet), and the job's
lexicon respellings (a word sent respelled for the voice is heard as the word it stands for). The keys are aligned
word by word (Levenshtein over words: rapidfuzz), and the alignment's differences are gathered into runs: a run is
consecutive words that differ, a single matching word inside a run does not end it (a skipped span often holds a
"the" that aligns by chance). A take fails when a run reaches ``MAX_RUN`` words (a skip, a repeat, an insertion,
a replacement of several words in a row) or when its word error rate passes ``MAX_ERROR_RATE``; an isolated
slip, which transcription makes on correct speech, does neither.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass

from num2words import num2words
from rapidfuzz.distance import Levenshtein

# Measured on the labelled set (bench/proof.py; README): runs of 4 words or more are faults, shorter ones slips.
MAX_RUN = 4
MAX_ERROR_RATE = 0.25  # and at least MIN_ERRORS words wrong: one slip in a four-word take is not a fault
MIN_ERRORS = 2

_WORD = re.compile(r"[^\W_]+(?:['’][^\W_]+)*", re.UNICODE)
_DIGITS = re.compile(r"^(\d+)(st|nd|rd|th)?$")
# British -> American, as patterns on a word's end: applied to both sides, so a false match (hour -> hor) is the
# same on both and harmless
_ENDINGS = (
    (re.compile(r"our(s|ed|ing|ful|able)?$"), r"or\1"),
    (re.compile(r"is(e|es|ed|ing|ation|ations)$"), r"iz\1"),
    (re.compile(r"ys(e|es|ed|ing)$"), r"yz\1"),
    (re.compile(r"tre(s)?$"), r"ter\1"),
    (re.compile(r"ll(ed|ing|er|ers)$"), r"l\1"),
    (re.compile(r"ogue(s)?$"), r"og\1"),
    (re.compile(r"ence(s)?$"), r"ense\1"),
)
_WORDS = {"grey": "gray", "greys": "grays", "programme": "program", "programmes": "programs", "tyre": "tire",
          "tyres": "tires", "cheque": "check", "plough": "plow", "draught": "draft", "mould": "mold",
          "aluminium": "aluminum", "kerb": "curb", "whilst": "while", "amongst": "among"}  # fmt: skip


@dataclass(frozen=True)
class Word:
    key: str  # what is compared
    index: int  # the word of the text it comes from (a number said in words is several keys of one word)


def words(text: str, respellings: Mapping[str, str] | None = None) -> tuple[list[str], list[Word]]:
    """``text``'s words as written, and their keys for comparison. ``respellings``: respelled form -> the word
    it stands for (the job's lexicon, reversed), matched case-blind."""
    shown = [m.group() for m in _WORD.finditer(unicodedata.normalize("NFKC", text).replace("-", " "))]
    respelled = {k.casefold(): v for k, v in (respellings or {}).items()}
    keys: list[Word] = []
    for index, word in enumerate(shown):
        folded = respelled.get(word.casefold(), word)
        for key in _keys(folded):
            keys.append(Word(key, index))
    return shown, keys


def _keys(word: str) -> list[str]:
    plain = unicodedata.normalize("NFKD", word.casefold())
    plain = "".join(c for c in plain if c.isalnum())
    if match := _DIGITS.match(plain):
        number, ordinal = int(match.group(1)), bool(match.group(2))
        said = num2words(number, to="ordinal" if ordinal else "cardinal")
        return [_spelled(w) for w in re.split(r"[\s,-]+", said) if w and w != "and"]
    return [_spelled(plain)] if plain else []


def _spelled(key: str) -> str:
    if key in _WORDS:
        return _WORDS[key]
    for pattern, american in _ENDINGS:
        if len(key) > 4 and pattern.search(key):
            return pattern.sub(american, key)
    return key


@dataclass(frozen=True)
class Run:
    """Consecutive words that differ: the sent text's words [sent_start, sent_end) and the transcript's
    [heard_start, heard_end), as indexes of the words as written."""

    sent_start: int
    sent_end: int
    heard_start: int
    heard_end: int
    length: int  # words wrong in it (the longer side of each difference; a matching word inside is not counted)


@dataclass(frozen=True)
class Hearing:
    error_rate: float  # word errors / words sent
    longest_run: int
    runs: tuple[Run, ...]

    @property
    def passed(self) -> bool:
        errors = sum(r.length for r in self.runs)
        too_many = self.error_rate > MAX_ERROR_RATE and errors >= MIN_ERRORS
        return self.longest_run < MAX_RUN and not too_many


def hear(sent: str, heard: str, respellings: Mapping[str, str] | None = None) -> Hearing:
    """``heard`` (a transcript) against ``sent`` (the take's text)."""
    _, sent_words = words(sent, respellings)
    _, heard_words = words(heard)
    a, b = [w.key for w in sent_words], [w.key for w in heard_words]
    if not a:
        return Hearing(0.0 if not b else 1.0, len(b), (Run(0, 0, 0, len(b), len(b)),) if b else ())
    spans: list[list[int]] = []  # [a_start, a_end, b_start, b_end, words wrong] in keys
    for op in Levenshtein.opcodes(a, b):
        if op.tag == "equal":
            continue
        wrong = max(op.src_end - op.src_start, op.dest_end - op.dest_start)
        if spans and op.src_start - spans[-1][1] <= 1 and op.dest_start - spans[-1][3] <= 1:
            spans[-1][1], spans[-1][3] = op.src_end, op.dest_end  # one matching word between: the same run
            spans[-1][4] += wrong
        else:
            spans.append([op.src_start, op.src_end, op.dest_start, op.dest_end, wrong])
    runs = tuple(_run(span, sent_words, heard_words) for span in spans)
    distance = Levenshtein.distance(a, b)
    return Hearing(round(distance / len(a), 4), max((r.length for r in runs), default=0), runs)


def _run(span: list[int], sent: list[Word], heard: list[Word]) -> Run:
    a0, a1, b0, b1, wrong = span

    def shown(words: list[Word], start: int, end: int) -> tuple[int, int]:
        if start == end:  # nothing on this side: the place between two words
            at = words[start].index if start < len(words) else (words[-1].index + 1 if words else 0)
            return at, at
        return words[start].index, words[end - 1].index + 1

    s0, s1 = shown(sent, a0, a1)
    h0, h1 = shown(heard, b0, b1)
    return Run(s0, s1, h0, h1, wrong)
