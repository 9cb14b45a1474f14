"""Text normalisation for speech, and the job's pronunciation lexicon. Deterministic."""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable
from dataclasses import replace

from .document import Block, Chapter

_INVISIBLE = dict.fromkeys(map(ord, "\u00ad\u200b\u200c\u2060\ufeff"), None)
_CHARACTERS = str.maketrans(
    {
        "\u2018": "'",
        "\u2019": "'",
        "\u201a": "'",
        "\u201b": "'",
        "\u2032": "'",
        "\u201c": '"',
        "\u201d": '"',
        "\u201e": '"',
        "\u201f": '"',
        "\u2033": '"',
        "\u2026": "...",
        "\u00a0": " ",
        "\u2009": " ",
        "\u202f": " ",
        "\u2002": " ",
        "\u2003": " ",
    }
)
# Abbreviations a voice tends to misread, and that would otherwise look like sentence ends.
_ABBREVIATIONS = {
    "Mr.": "Mister",
    "Mrs.": "Missus",
    "Dr.": "Doctor",
    "Prof.": "Professor",
    "e.g.": "for example",
    "i.e.": "that is",
    "vs.": "versus",
    "approx.": "approximately",
}
_WS = re.compile(r"\s+")
# Control characters (NUL, escape sequences' ESC, C1 controls) never reach a voice: piper raises on NUL, and an
# API would be paid to read them
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]")
# Terminal escape sequences whole (CSI such as colours, OSC such as window titles), so no "[31m" is left to say
_ESCAPES = re.compile(r"\x1b\[[0-?]*[ -/]*[@-~]|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)?|\x1b[@-_]")


def plain(text: str) -> str:
    """``text`` without escape sequences and control characters (each becomes a space); tabs and newlines stay.
    For speech, and for everything narrator prints: a chapter title must not drive a user's terminal."""
    return _CONTROL.sub(" ", _ESCAPES.sub("", text))


def _word_pattern(words: Iterable[str]) -> re.Pattern[str] | None:
    ordered = sorted(set(words), key=len, reverse=True)  # longest first: "New York" before "New"
    if not ordered:
        return None
    alternatives = "|".join(re.escape(w) for w in ordered)
    return re.compile(rf"(?<![\w.])(?:{alternatives})(?![\w])")


_ABBREVIATION_RE = _word_pattern(_ABBREVIATIONS)


_ROMAN = re.compile(r"^(?=[MDCLXVI])M{0,3}(CM|CD|D?C{0,3})(XC|XL|L?X{0,3})(IX|IV|V?I{0,3})\.?$", re.IGNORECASE)
_ARABIC = re.compile(r"^(\d{1,3})\.?$")
_ONES = (
    "",
    "one",
    "two",
    "three",
    "four",
    "five",
    "six",
    "seven",
    "eight",
    "nine",
    "ten",
    "eleven",
    "twelve",
    "thirteen",
    "fourteen",
    "fifteen",
    "sixteen",
    "seventeen",
    "eighteen",
    "nineteen",
)
_TENS = ("", "", "twenty", "thirty", "forty", "fifty", "sixty", "seventy", "eighty", "ninety")


def number_words(n: int) -> str:
    """1..999 in English words (a chapter number, said aloud): 21 -> "twenty-one"."""
    hundreds, rest = divmod(n, 100)
    words = [f"{_ONES[hundreds]} hundred"] if hundreds else []
    if rest >= 20:
        words.append(_TENS[rest // 10] + (f"-{_ONES[rest % 10]}" if rest % 10 else ""))
    elif rest:
        words.append(_ONES[rest])
    return " and ".join(words)


def bare_number(title: str) -> int | None:
    """The number a title is made of and nothing else: "IV", "iv.", "12" (None for "I Remember", "1984 Again")."""
    title = title.strip()
    if _ROMAN.match(title):
        values = {"m": 1000, "d": 500, "c": 100, "l": 50, "x": 10, "v": 5, "i": 1}
        digits = [values[c] for c in title.rstrip(".").lower()]
        total = sum(-d if i + 1 < len(digits) and d < digits[i + 1] else d for i, d in enumerate(digits))
        return total if 0 < total < 1000 else None
    if match := _ARABIC.match(title):
        return int(match.group(1)) or None
    return None


class Preparer:
    """Normalises block text for speech and applies a lexicon (word -> replacement, whole words, one pass).
    ``numbered_titles``: a chapter that opens with a bare numeral heading ("I", "IV", "12") says "Chapter One"
    there instead (a lone "I" sounds like the pronoun); its title as printed is kept everywhere else."""

    def __init__(self, lexicon: Iterable[tuple[str, str]] = (), *, numbered_titles: bool = False):
        self.lexicon = dict(lexicon)
        self.lexicon_re = _word_pattern(self.lexicon)
        self.numbered_titles = numbered_titles

    def text(self, text: str) -> str:
        text = unicodedata.normalize("NFC", plain(text)).translate(_INVISIBLE).translate(_CHARACTERS)
        text = _WS.sub(" ", text).strip()
        if _ABBREVIATION_RE is not None:
            text = _ABBREVIATION_RE.sub(lambda m: _ABBREVIATIONS[m.group(0)], text)
        if self.lexicon_re is not None:
            text = self.lexicon_re.sub(lambda m: self.lexicon[m.group(0)], text)
        return text

    @staticmethod
    def shown(text: str) -> str:
        """The text as printed, cleaned only of what no reader sees: controls, invisible characters, runs of
        spaces; its lines, characters and punctuation stay (subtitles show it)."""
        text = unicodedata.normalize("NFC", plain(text)).translate(_INVISIBLE)
        return "\n".join(line for raw in text.split("\n") if (line := _WS.sub(" ", raw).strip()))

    def chapter(self, chapter: Chapter) -> Chapter:
        blocks = []
        for block in chapter.blocks:
            if block.kind == "scene_break":
                blocks.append(block)
                continue
            text = self.text(block.text)
            if not blocks and block.kind == "heading" and self.numbered_titles and (n := bare_number(text)):
                text = f"Chapter {number_words(n).capitalize()}"
            if text:
                blocks.append(Block(block.kind, text, block.level, shown=self.shown(block.shown or block.text)))
        return replace(chapter, title=self.text(chapter.title) or chapter.title, blocks=tuple(blocks))
