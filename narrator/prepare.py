"""Text normalisation for speech, and the job's pronunciation lexicon. Deterministic."""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable

from .document import Block, Chapter

_INVISIBLE = dict.fromkeys(map(ord, "\u00ad\u200b\u200c\u2060\ufeff"), None)
_CHARACTERS = str.maketrans(
    {
        "\u2018": "'", "\u2019": "'", "\u201a": "'", "\u201b": "'", "\u2032": "'",
        "\u201c": '"', "\u201d": '"', "\u201e": '"', "\u201f": '"', "\u2033": '"',
        "\u2026": "...", "\u00a0": " ", "\u2009": " ", "\u202f": " ", "\u2002": " ", "\u2003": " ",
    }
)  # fmt: skip
# Abbreviations a voice tends to misread, and that would otherwise look like sentence ends.
_ABBREVIATIONS = {
    "Mr.": "Mister", "Mrs.": "Missus", "Dr.": "Doctor", "Prof.": "Professor", "e.g.": "for example",
    "i.e.": "that is", "vs.": "versus", "approx.": "approximately",
}  # fmt: skip
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


class Preparer:
    """Normalises block text for speech and applies a lexicon (word -> replacement, whole words, one pass)."""

    def __init__(self, lexicon: Iterable[tuple[str, str]] = ()):
        self.lexicon = dict(lexicon)
        self.lexicon_re = _word_pattern(self.lexicon)

    def text(self, text: str) -> str:
        text = unicodedata.normalize("NFC", plain(text)).translate(_INVISIBLE).translate(_CHARACTERS)
        text = _WS.sub(" ", text).strip()
        if _ABBREVIATION_RE is not None:
            text = _ABBREVIATION_RE.sub(lambda m: _ABBREVIATIONS[m.group(0)], text)
        if self.lexicon_re is not None:
            text = self.lexicon_re.sub(lambda m: self.lexicon[m.group(0)], text)
        return text

    def chapter(self, chapter: Chapter) -> Chapter:
        blocks = []
        for block in chapter.blocks:
            if block.kind == "scene_break":
                blocks.append(block)
                continue
            text = self.text(block.text)
            if text:
                blocks.append(Block(block.kind, text, block.level))
        return Chapter(self.text(chapter.title) or chapter.title, tuple(blocks))
