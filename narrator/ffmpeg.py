"""ffmpeg from PyPI (imageio-ffmpeg): encode, decode and read back metadata. There is no ffprobe."""

from __future__ import annotations

import re
import subprocess
from functools import lru_cache
from pathlib import Path

from .audio import Audio
from .errors import ToolError


@lru_cache(maxsize=1)
def executable() -> str:
    import imageio_ffmpeg

    return imageio_ffmpeg.get_ffmpeg_exe()


def run(args: list[str], what: str, stdin: bytes | None = None) -> bytes:
    command = [executable(), "-hide_banner", "-nostdin", "-loglevel", "error", "-y", *args]
    if stdin is not None:
        command.remove("-nostdin")
    proc = subprocess.run(command, input=stdin, capture_output=True, check=False)
    if proc.returncode != 0:
        lines = proc.stderr.decode("utf-8", errors="replace").strip().splitlines()
        raise ToolError(f"ffmpeg failed while {what}: {lines[-1] if lines else f'exit {proc.returncode}'}")
    return proc.stdout


def decode(source: Path | bytes, rate: int, input_format: str | None = None) -> Audio:
    """Decode any audio ffmpeg reads to 16-bit mono PCM at ``rate``. Pass ``input_format`` (mp3, ...)
    for bytes: without ffprobe, guessing the format of a pipe is unreliable."""
    head = ["-f", input_format] if input_format else []
    stdin = source if isinstance(source, bytes) else None
    source_arg = "pipe:0" if stdin is not None else str(source)
    pcm = run([*head, "-i", source_arg, "-f", "s16le", "-ac", "1", "-ar", str(rate), "pipe:1"], "decoding", stdin)
    return Audio(pcm, rate)


def read_metadata(path: Path) -> dict[str, object]:
    """Global tags and chapters (start, end in seconds, title), as ffmpeg reads them from a file."""
    text = run(["-i", str(path), "-f", "ffmetadata", "pipe:1"], "reading metadata").decode("utf-8")
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
