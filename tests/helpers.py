"""Helpers only the tests use: building WAV bodies, reading back what ffmpeg wrote, undoing the chunker."""

from __future__ import annotations

import io
import re
import wave
from collections.abc import Sequence
from pathlib import Path

from narrator.core import ffmpeg
from narrator.core.audio import SAMPLE_WIDTH, Audio, PcmStream
from narrator.synthesis.cache import TakeCache
from narrator.text.chunker import Chunk
from narrator.text.document import Chapter


def wav_bytes(audio: Audio) -> bytes:
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(SAMPLE_WIDTH)
        w.setframerate(audio.rate)
        w.writeframes(audio.pcm)
    return buffer.getvalue()


def parse_wav(data: bytes) -> Audio:
    """Read a whole WAV body, including streamed ones whose sizes are 0xFFFFFFFF (see PcmStream)."""
    stream = PcmStream(wav=True)
    pcm = stream.feed(data)
    stream.close()
    assert stream.rate is not None
    return Audio(pcm, stream.rate)


def read_metadata(path: Path) -> dict[str, object]:
    """Global tags and chapters (start, end in seconds, title), as ffmpeg reads them from a file."""
    text = ffmpeg.run(["-i", str(path), "-f", "ffmetadata", "pipe:1"], "reading metadata").decode("utf-8")
    tags: dict[str, str] = {}
    chapters: list[dict[str, object]] = []
    current: dict[str, str] | None = None
    for line in text.splitlines():
        if line == "[CHAPTER]":
            current = {}
            chapters.append(current)  # type: ignore[arg-type]
            continue
        if line.startswith((";", "[")) or "=" not in line:
            continue
        key, _, value = line.partition("=")
        value = re.sub(r"\\(.)", r"\1", value)
        (current if current is not None else tags)[key.lower()] = value
    parsed = []
    for ch in chapters:
        num, den = (int(x) for x in str(ch.get("timebase", "1/1000")).split("/"))
        parsed.append(
            {
                "start": int(ch["start"]) * num / den,
                "end": int(ch["end"]) * num / den,
                "title": ch.get("title", ""),
            }
        )
    return {"tags": tags, "chapters": parsed}


def chapter_text(chapter: Chapter) -> str:
    """A chapter's prepared text: its spoken blocks, separated by blank lines."""
    return "\n\n".join(b.text for b in chapter.blocks if b.kind != "scene_break")


def join_chunks(chunks: Sequence[Chunk]) -> str:
    """The inverse of chunking for one chapter: pieces of a block joined, blocks separated by blank lines."""
    blocks: dict[int, list[str]] = {}
    for chunk in chunks:
        blocks.setdefault(chunk.block, []).append(chunk.text)
    return "\n\n".join("".join(pieces) for _, pieces in sorted(blocks.items()))


def put_take(cache: TakeCache, key: str, audio: Audio) -> Path:
    """Store a whole take, as a provider would have streamed it."""
    take = cache.pending(key)
    take.write(audio.pcm, audio.rate)
    take.commit()
    return take.path
