"""SRT and VTT subtitles: one cue per sentence, timed from the takes.

A take's place in its chapter is exact (assembly records it). Inside a take, assembly places each sentence
(assemble.sentence_onsets): its share of the take in proportion to its characters, then moved to the end
of the nearest pause in the sound. bench/run.py measures how far that lands from the real sentence starts
of the local voice.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from .assemble import ChapterAudio
from .audio import atomic_write
from .chunker import Chunk, spoken_sentences


@dataclass(frozen=True)
class Cue:
    start: float
    end: float
    text: str


def chapter_cues(chapter: ChapterAudio, chunks: Sequence[Chunk], offset: float = 0.0) -> list[Cue]:
    """Cues for one chapter; ``offset`` places them on a longer timeline (the whole book)."""
    by_id = {c.id: c for c in chunks}
    cues: list[Cue] = []
    for placed in chapter.placements:
        parts = spoken_sentences(by_id[placed.chunk_id].spoken)
        starts = [0.0, *placed.onsets]  # where assembly heard each sentence begin
        ends = [*placed.onsets, placed.duration]
        base = offset + placed.offset
        cues += [Cue(base + a, base + b, part) for part, a, b in zip(parts, starts, ends, strict=True)]
    return cues


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
