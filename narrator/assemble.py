"""Per chapter: trim each take's own leading and trailing silence, then join the takes with the job's
pauses in one pass. One chapter is in memory at a time; each becomes a WAV for the writers."""

from __future__ import annotations

import hashlib
import json
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from . import ffmpeg
from .audio import SAMPLE_WIDTH, Audio, atomic_write, silence, wav_bytes
from .chunker import Chunk
from .spec import PauseSpec

with warnings.catch_warnings():
    # pydub looks for ffmpeg on PATH when imported; there is none, and we hand it ours below
    warnings.simplefilter("ignore", RuntimeWarning)
    from pydub import AudioSegment
    from pydub.silence import detect_leading_silence
AudioSegment.converter = ffmpeg.executable()

SILENCE_THRESHOLD_DBFS = -50.0
TRIM_MARGIN_MS = 30  # keep a little of the edge so soft consonants are not clipped


@dataclass(frozen=True)
class Placement:
    chunk_id: str
    offset: float  # seconds from the start of the chapter file
    duration: float  # seconds of the trimmed take


@dataclass(frozen=True)
class ChapterAudio:
    index: int
    title: str
    wav: Path
    samples: int
    rate: int
    placements: tuple[Placement, ...]

    @property
    def duration(self) -> float:
        return self.samples / self.rate


def gap_seconds(chunk: Chunk, pauses: PauseSpec) -> float:
    return {
        "chapter_start": pauses.chapter_start,
        "after_heading": pauses.after_heading,
        "paragraph": pauses.paragraph,
        "chunk": pauses.chunk,
        "scene_break": pauses.scene_break,
    }[chunk.gap]


def trim(audio: Audio, rate: int) -> bytes:
    """The take without its own leading and trailing silence, at the book's rate."""
    segment = AudioSegment(data=audio.pcm, sample_width=SAMPLE_WIDTH, frame_rate=audio.rate, channels=1)
    if audio.rate != rate:
        segment = segment.set_frame_rate(rate)
    lead = detect_leading_silence(segment, SILENCE_THRESHOLD_DBFS, chunk_size=5)
    tail = detect_leading_silence(segment.reverse(), SILENCE_THRESHOLD_DBFS, chunk_size=5)
    start = max(0, lead - TRIM_MARGIN_MS)
    end = min(len(segment), len(segment) - tail + TRIM_MARGIN_MS)
    if end <= start:  # all silence: keep nothing rather than a click
        return b""
    return segment[start:end].raw_data


def assemble_chapter(
    index: int,
    title: str,
    chunks: Sequence[Chunk],
    load_take: Callable[[Chunk], Audio],
    pauses: PauseSpec,
    rate: int,
    wav_path: Path,
) -> ChapterAudio:
    parts: list[bytes] = []
    placements: list[Placement] = []
    position = 0  # in samples
    for chunk in chunks:
        gap = silence(gap_seconds(chunk, pauses), rate)
        body = trim(load_take(chunk), rate)
        parts += [gap, body]
        position += len(gap) // SAMPLE_WIDTH
        placements.append(Placement(chunk.id, position / rate, len(body) // SAMPLE_WIDTH / rate))
        position += len(body) // SAMPLE_WIDTH
    parts.append(silence(pauses.chapter_end, rate))
    pcm = b"".join(parts)  # one join: growing a buffer with + is quadratic
    atomic_write(wav_path, wav_bytes(Audio(pcm, rate)))
    return ChapterAudio(index, title, wav_path, len(pcm) // SAMPLE_WIDTH, rate, tuple(placements))


def chapter_fingerprint(title: str, keys: Sequence[str], pauses: PauseSpec, rate: int) -> str:
    """What a chapter file depends on; an unchanged fingerprint means its outputs can be reused."""
    payload = json.dumps([title, list(keys), pauses.__dict__, rate], sort_keys=True)
    return hashlib.sha256(payload.encode("utf-8")).hexdigest()[:16]
