"""Split prepared chapters into chunks under the provider's limits.

A chunk never crosses a block (paragraph or heading): boundaries depend only on the block's own text,
so an edit in one paragraph changes only that paragraph's chunks. A block over the limits is split on
sentence, then clause, then word, then character boundaries. Pieces tile their block exactly: joined,
the chunks of a chapter give back its prepared text (see ``chapter_text``).
"""

from __future__ import annotations

import hashlib
import itertools
import re
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Literal

from .document import Chapter
from .tokens import count_tokens

# What comes before a chunk; assembly turns it into silence from the job's pauses.
Gap = Literal["chapter_start", "after_heading", "paragraph", "chunk", "scene_break", "speaker"]

# Cut points, coarsest first. Each pattern matches the end of a unit; whitespace stays with the unit.
_SENTENCE = re.compile(r"""[.!?]+["')\]]*\s+|[。！？]+[」』）"]*\s*""")
_CLAUSE = re.compile(r"[,;:]\s+|\s+[—–-]\s+|[—–]|[、，；：]")
_WORD = re.compile(r"\S+\s*")
_CHARACTER = re.compile(r".[\u0300-\u036f\u200d\ufe0f]*", re.DOTALL)
LEVELS = (_SENTENCE, _CLAUSE, _WORD, _CHARACTER)


@dataclass(frozen=True)
class Limits:
    max_chars: int
    max_tokens: int  # for the text itself: instruction tokens are already subtracted


@dataclass(frozen=True)
class Chunk:
    id: str
    chapter: int  # index in the book
    block: int  # index of the block in its chapter
    piece: int  # index of the piece in its block
    kind: Literal["heading", "paragraph"]
    gap: Gap
    text: str  # the exact slice of the block's prepared text, trailing whitespace included
    tokens: int
    speaker: str = "narrator"  # with a cast: the character who says it (a take never mixes two)

    @property
    def spoken(self) -> str:
        return self.text.strip()

    @property
    def chars(self) -> int:
        return len(self.spoken)


def _units(text: str, pattern: re.Pattern[str]) -> list[str]:
    """Cut ``text`` after every match of ``pattern``; the units join back to ``text``."""
    cuts = [m.end() for m in pattern.finditer(text) if 0 < m.end() < len(text)]
    bounds = [0, *cuts, len(text)]
    return [text[a:b] for a, b in itertools.pairwise(bounds) if b > a]


def sentences(text: str) -> list[str]:
    """The sentences of a text, as the splitter sees them; they join back to ``text``."""
    return _units(text, _SENTENCE)


def spoken_sentences(text: str) -> list[str]:
    """The sentences a listener hears, one subtitle cue each: stripped, none empty."""
    return [s.strip() for s in sentences(text) if s.strip()]


def split_text(text: str, limits: Limits, count: Callable[[str], int] = count_tokens) -> list[str]:
    """Split one block's text into pieces within both limits; ``"".join(pieces) == text``."""

    def fits(piece: str) -> bool:
        spoken = piece.strip()
        return len(spoken) <= limits.max_chars and count(spoken) <= limits.max_tokens

    def split(piece: str, level: int) -> list[str]:
        if fits(piece):
            return [piece]
        if level == len(LEVELS):  # a single character over the limit: nothing smaller exists
            return [piece]
        units: list[str] = []
        for unit in _units(piece, LEVELS[level]):
            units.extend(split(unit, level + 1) if not fits(unit) else [unit])
        return pack(units)

    def pack(units: list[str]) -> list[str]:
        # Greedy: sum of unit token counts is a cheap, almost always conservative estimate; the exact
        # count is checked when a piece closes, and the piece gives back units until it fits.
        pieces: list[str] = []
        current: list[str] = []
        chars = tokens = 0
        for unit in units:
            unit_tokens = count(unit.strip())
            if current and (chars + len(unit) > limits.max_chars + 1 or tokens + unit_tokens > limits.max_tokens):
                pieces.extend(close(current))
                current, chars, tokens = [], 0, 0
            current.append(unit)
            chars += len(unit)
            tokens += unit_tokens
        if current:
            pieces.extend(close(current))
        return pieces

    def close(units: list[str]) -> list[str]:
        out: list[str] = []
        while units:
            n = len(units)
            while n > 1 and not fits("".join(units[:n])):
                n -= 1
            out.append("".join(units[:n]))
            units = units[n:]
        return out

    return split(text, 0) if text else []


def chunk_chapters(
    chapters: Sequence[Chapter],
    limits: Limits,
    speakers: Mapping[tuple[int, int], Sequence[tuple[int, int, str]]] | None = None,
) -> list[Chunk]:
    """Chunks for a whole book, in reading order, with ids stable while their text is unchanged. ``speakers``
    (with a cast): who reads each stretch of a paragraph with dialogue, (chapter, block) -> (begin, end, speaker)
    tiling its text: a chunk never crosses from one to the next."""
    raw: list[tuple[int, int, int, str, Gap, str, int, str]] = []
    for c, chapter in enumerate(chapters):
        previous = "chapter_start"
        for b, block in enumerate(chapter.blocks):
            if block.kind == "scene_break":
                previous = "scene_break"
                continue
            stretches = (speakers or {}).get((c, b)) or [(0, len(block.text), "narrator")]
            pieces = [
                (piece, speaker, k > 0 and n == 0)
                for k, (begin, end, speaker) in enumerate(stretches)
                for n, piece in enumerate(split_text(block.text[begin:end], limits))
            ]
            for p, (piece, speaker, turn) in enumerate(pieces):
                gap = _gap(p, turn, previous)
                raw.append((c, b, p, block.kind, gap, piece, count_tokens(piece.strip()), speaker))
            previous = block.kind
    seen: Counter[str] = Counter()
    chunks = []
    for c, b, p, kind, gap, piece, tokens, speaker in raw:
        digest = hashlib.sha256(piece.strip().encode("utf-8")).hexdigest()[:12]
        seen[digest] += 1
        chunk_id = f"c{digest}" if seen[digest] == 1 else f"c{digest}-{seen[digest]}"
        chunks.append(Chunk(chunk_id, c, b, p, kind, gap, piece, tokens, speaker))  # type: ignore[arg-type]
    return chunks


def _gap(piece: int, turn: bool, previous: str) -> Gap:
    """The pause before a piece: inside a paragraph, between its pieces or where another speaker takes over;
    before its first, by what came before."""
    if piece > 0:
        return "speaker" if turn else "chunk"
    if previous in ("chapter_start", "scene_break"):
        return previous  # type: ignore[return-value]
    return "after_heading" if previous == "heading" else "paragraph"
