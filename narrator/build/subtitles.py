"""SRT and VTT subtitles: the source's text, timed from the takes, in cues a viewer can read.

Timing. A take's place in its chapter is exact (assembly records it). Inside a take, assembly places each sentence
(assemble.sentence_onsets): its share of the take in proportion to its characters, then moved to the end of the
nearest pause in the sound. bench/run.py measures how far that lands from the real sentence starts of the local
voice.

Text. A cue shows the block as printed (``Block.shown``), not the text sent to the voice: verse keeps its lines
and none of the commas added for the ear, and "Mr." is not "Mister". Each spoken sentence is mapped to its span of
the printed text through a word alignment (difflib), so every printed word is shown once, in order.

Rules (the usual ones for subtitles, which a 751-character cue of verse broke): at most two lines of about 42
characters, between 1 and 7 seconds. A sentence too long for one cue is split: verse two lines a cue, in order;
prose after a clause's punctuation, else between words, nearest the middle. A sentence too short to read is
joined to the next of its paragraph where the two fit one cue. A heading that is only a number ("I.") gets no
cue of its own.
"""

from __future__ import annotations

import bisect
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from difflib import SequenceMatcher
from pathlib import Path

from ..core.audio import atomic_write
from ..text.chunker import Chunk, sentences
from ..text.document import Block
from ..text.normalise import bare_number
from .assemble import ChapterAudio

LINE_CHARS = 42  # a line of a cue, at most (one word longer than that stands alone)
MAX_LINES = 2
MIN_SECONDS = 1.0
MAX_SECONDS = 7.0

_WORD = re.compile(r"\S+")
_CLAUSE_END = re.compile(r"[,;:.!?)\]—–…](?=\s)")


@dataclass(frozen=True)
class Cue:
    start: float
    end: float
    text: str


@dataclass(frozen=True)
class Said:
    """One spoken sentence: its time and its span of its block's printed text."""

    block: int
    begin: int
    end: int
    start: float
    stop: float


class _Printed:
    """A block's printed text, and where each word of its spoken text lands in it."""

    def __init__(self, said: str, shown: str):
        self.shown = shown
        said_words = [m.start() for m in _WORD.finditer(said)]
        self.said_starts = said_words
        self.shown_starts = [m.start() for m in _WORD.finditer(shown)]
        keys = [_key(w) for w in _WORD.findall(said)], [_key(w) for w in _WORD.findall(shown)]
        matcher = SequenceMatcher(None, *keys, autojunk=False)
        self.to_shown = [0] * len(said_words)
        for _, i1, i2, j1, j2 in matcher.get_opcodes():
            for i in range(i1, i2):  # a word said differently ("Mister" for "Mr.") maps in proportion
                self.to_shown[i] = j1 + (i - i1) * (j2 - j1) // (i2 - i1)

    def at(self, said_char: int) -> int:
        """The printed position of the spoken word that starts at or after ``said_char``."""
        i = bisect.bisect_left(self.said_starts, said_char)
        word = self.to_shown[i] if i < len(self.to_shown) else len(self.shown_starts)
        return self.shown_starts[word] if word < len(self.shown_starts) else len(self.shown)


def _key(word: str) -> str:
    return re.sub(r"\W+", "", word.casefold())


def chapter_cues(
    chapter: ChapterAudio, chunks: Sequence[Chunk], blocks: Sequence[Block], offset: float = 0.0
) -> list[Cue]:
    """Cues for one chapter (``blocks``: its prepared blocks, which the chunks index); ``offset`` places them on
    a longer timeline (the whole book)."""
    said, printed = said_sentences(chapter, chunks, blocks, offset)
    return _settle(_cues(_joined(said, printed), printed), offset + chapter.duration)


def said_sentences(
    chapter: ChapterAudio,
    chunks: Sequence[Chunk],
    blocks: Sequence[Block],
    offset: float = 0.0,
    *,
    bare_numbers: bool = False,
) -> tuple[list[Said], dict[int, str]]:
    """Every sentence the chapter's takes say, in order, with its time (from the takes' placements, ``offset``
    on) and its span of its block's printed text; and each block's printed text. A heading that is only a number
    ("I.") is left out unless ``bare_numbers``: the chapter marker says it."""
    by_id = {c.id: c for c in chunks}
    printed: dict[int, _Printed] = {}
    piece_at: dict[str, int] = {}  # chunk id -> where its text starts in its block's text
    ends: dict[int, int] = {}  # block -> where its last chunk ends
    for chunk in sorted(chunks, key=lambda c: (c.block, c.piece)):
        piece_at[chunk.id] = ends.get(chunk.block, 0)
        ends[chunk.block] = piece_at[chunk.id] + len(chunk.text)
    said: list[Said] = []
    for placed in chapter.placements:
        chunk = by_id[placed.chunk_id]
        block = blocks[chunk.block]
        if not bare_numbers and chunk.kind == "heading" and bare_number(block.shown or block.text) is not None:
            continue  # "I.": the chapter marker says it; alone on screen it says nothing
        if chunk.block not in printed:
            printed[chunk.block] = _Printed(block.text, block.shown or block.text)
        text = printed[chunk.block]
        starts, at = [], piece_at[chunk.id]
        for sentence in sentences(chunk.text):
            if sentence.strip():
                starts.append(text.at(at + len(sentence) - len(sentence.lstrip())))
            at += len(sentence)
        last = piece_at[chunk.id] + len(chunk.text) >= len(block.text)
        bounds = [*starts[1:], len(text.shown) if last else text.at(at)]
        if not starts:
            continue
        if piece_at[chunk.id] == 0:
            starts[0] = 0  # what the block prints before its first word (an opening quote) is shown with it
        times = [0.0, *placed.onsets, placed.duration]
        base = offset + placed.offset
        for k, (begin, end) in enumerate(zip(starts, bounds, strict=True)):
            said.append(Said(chunk.block, begin, max(begin, end), base + times[k], base + times[k + 1]))
    return said, {index: p.shown for index, p in printed.items()}


def _joined(said: list[Said], printed: dict[int, str]) -> list[Said]:
    """Sentences too short to read joined to the next of their paragraph, where the two fit one cue."""
    out: list[Said] = []
    for s in said:
        if out and _joins(out[-1], s, printed[s.block]):
            out[-1] = Said(s.block, out[-1].begin, s.end, out[-1].start, s.stop)
        else:
            out.append(s)
    return out


def _joins(before: Said, s: Said, shown: str) -> bool:
    if before.block != s.block or before.stop - before.start >= MIN_SECONDS or s.stop - before.start > MAX_SECONDS:
        return False
    return _lines(shown[before.begin : s.end].strip()) is not None


def _cues(said: list[Said], printed: dict[int, str]) -> list[Cue]:
    cues: list[Cue] = []
    for s in said:
        text = printed[s.block][s.begin : s.end].strip()
        if text:
            cues += _split(text, s.start, s.stop)
        elif cues:  # a sentence whose words the alignment gave to its neighbour: its time goes there too
            cues[-1] = Cue(cues[-1].start, s.stop, cues[-1].text)
    return cues


def _split(text: str, start: float, stop: float) -> list[Cue]:
    lines = _lines(text)
    if lines is not None and (stop - start <= MAX_SECONDS or " " not in text):
        return [Cue(start, stop, "\n".join(lines))]
    cut = _verse_cut(text, stop - start) or _cut(text)
    if cut is None:  # one word: nothing smaller exists
        return [Cue(start, stop, text)]
    left, right = text[:cut].strip(), text[cut:].strip()
    at = start + (stop - start) * len(left) / (len(left) + len(right))
    return _split(left, start, at) + _split(right, at, stop)


def _verse_cut(text: str, seconds: float) -> int | None:
    """Verse is shown two lines a cue, from its first line on: the end of the most lines that fit one cue."""
    lines = text.split("\n")
    for count in range(min(MAX_LINES, len(lines) - 1), 0, -1):
        head = "\n".join(lines[:count])
        if _lines(head) is not None and seconds * len(head) / len(text) <= MAX_SECONDS:
            return len(head)
    return None


def _cut(text: str) -> int | None:
    """Where to split a text too long for one cue: at a verse line, else after a clause, else between words;
    the candidate nearest the middle."""
    middle = len(text) / 2
    for pattern in (r"\n", _CLAUSE_END.pattern + r"\s", r"\s"):
        found = [m.end() for m in re.finditer(pattern, text) if 0 < m.end() < len(text)]
        if found:
            return min(found, key=lambda at: abs(at - middle))
    return None


def _lines(text: str) -> list[str] | None:
    """The text as at most two lines of LINE_CHARS (a verse line is a line); None when it does not fit."""
    parts = text.split("\n")
    if len(parts) > MAX_LINES:
        return None
    if len(parts) == 2:
        return parts if all(len(p) <= LINE_CHARS for p in parts) else None
    if len(text) <= LINE_CHARS:
        return [text]
    spaces = [m.start() for m in re.finditer(" ", text)]
    fitting = [at for at in spaces if at <= LINE_CHARS and len(text) - at - 1 <= LINE_CHARS]
    if not fitting:
        return None
    # balanced (the two lines about as long), and after a comma where one is near the middle
    at = min(fitting, key=lambda a: abs(a - len(text) / 2) - (10 if text[a - 1] in ",;:" else 0))
    return [text[:at], text[at + 1 :]]


def _settle(cues: list[Cue], end_of_chapter: float) -> list[Cue]:
    """A cue shorter than MIN_SECONDS stays up into the silence after it (never over the next, nor past the
    chapter's end)."""
    settled = []
    for k, cue in enumerate(cues):
        limit = cues[k + 1].start if k + 1 < len(cues) else end_of_chapter
        settled.append(Cue(cue.start, max(cue.end, min(cue.start + MIN_SECONDS, limit)), cue.text))
    return settled


def _stamp(seconds: float, separator: str) -> str:
    ms = max(0, round(seconds * 1000))
    h, rest = divmod(ms, 3_600_000)
    m, rest = divmod(rest, 60_000)
    s, ms = divmod(rest, 1000)
    return f"{h:02d}:{m:02d}:{s:02d}{separator}{ms:03d}"


def srt(cues: Iterable[Cue]) -> str:
    blocks = [f"{i}\n{_stamp(c.start, ',')} --> {_stamp(c.end, ',')}\n{c.text}\n" for i, c in enumerate(cues, 1)]
    return "\n".join(blocks)


def vtt(cues: Iterable[Cue]) -> str:
    blocks = [f"{_stamp(c.start, '.')} --> {_stamp(c.end, '.')}\n{c.text}\n" for c in cues]
    return "WEBVTT\n\n" + "\n".join(blocks)


def write_subtitles(cues: Sequence[Cue], stem: Path, formats: Iterable[str]) -> list[Path]:
    written = []
    for fmt in formats:
        path = stem.with_name(f"{stem.name}.{fmt}")
        atomic_write(path, (srt(cues) if fmt == "srt" else vtt(cues)).encode("utf-8"))
        written.append(path)
    return written
