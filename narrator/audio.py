"""PCM audio as plain values: 16-bit signed little-endian mono samples and a rate. WAV in and out."""

from __future__ import annotations

import contextlib
import io
import os
import struct
import tempfile
import wave
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

SAMPLE_WIDTH = 2  # bytes: s16le
_UMASK = os.umask(0)
os.umask(_UMASK)


@dataclass(frozen=True)
class Audio:
    pcm: bytes
    rate: int

    @property
    def samples(self) -> int:
        return len(self.pcm) // SAMPLE_WIDTH

    @property
    def duration(self) -> float:
        return self.samples / self.rate


def silence(seconds: float, rate: int) -> bytes:
    return b"\x00\x00" * round(seconds * rate)


def wav_bytes(audio: Audio) -> bytes:
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(SAMPLE_WIDTH)
        w.setframerate(audio.rate)
        w.writeframes(audio.pcm)
    return buffer.getvalue()


def parse_wav(data: bytes) -> Audio:
    """Read a WAV body, including streamed ones whose RIFF and data sizes are 0xFFFFFFFF (or wrong):
    the data chunk is taken to run to the end of the body."""
    if len(data) < 12 or data[:4] != b"RIFF" or data[8:12] != b"WAVE":
        raise ValueError("not a RIFF/WAVE body")
    pos, rate, channels, bits = 12, None, None, None
    while pos + 8 <= len(data):
        chunk_id, size = data[pos : pos + 4], struct.unpack("<I", data[pos + 4 : pos + 8])[0]
        body_start = pos + 8
        if chunk_id == b"fmt ":
            fmt, channels, rate, _, _, bits = struct.unpack("<HHIIHH", data[body_start : body_start + 16])
            if fmt not in (1, 0xFFFE):
                raise ValueError(f"unsupported WAV encoding {fmt} (only PCM)")
        elif chunk_id == b"data":
            if rate is None:
                raise ValueError("WAV data before its fmt chunk")
            end = len(data) if size == 0xFFFFFFFF or body_start + size > len(data) else body_start + size
            pcm = data[body_start:end]
            if channels != 1 or bits != 16:
                raise ValueError(f"expected 16-bit mono WAV, got {bits}-bit with {channels} channels")
            return Audio(pcm[: len(pcm) - len(pcm) % 2], rate)
        pos = body_start + size + (size & 1)
    raise ValueError("WAV body has no data chunk")


class WavWriter:
    """Append PCM to a WAV file without holding it in memory; the header is completed on close."""

    def __init__(self, file: BinaryIO, rate: int):
        self._wave = wave.open(file, "wb")  # noqa: SIM115 - closed by close()
        self._wave.setnchannels(1)
        self._wave.setsampwidth(SAMPLE_WIDTH)
        self._wave.setframerate(rate)
        self.rate = rate
        self.samples = 0

    def write(self, pcm: bytes) -> None:
        self._wave.writeframesraw(pcm)
        self.samples += len(pcm) // SAMPLE_WIDTH

    def close(self) -> None:
        self._wave.close()


@contextlib.contextmanager
def atomic_wav(path: Path, rate: int) -> Iterator[WavWriter]:
    """A WAV written piece by piece beside ``path``, then renamed into place: never seen half-written."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            writer = WavWriter(f, rate)
            yield writer
            writer.close()
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o666 & ~_UMASK)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def read_wav(path: Path) -> Audio:
    return parse_wav(path.read_bytes())


def atomic_write(path: Path, data: bytes) -> None:
    """Write to a temporary file beside ``path``, fsync, then rename over it: readers never see half a file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o666 & ~_UMASK)  # mkstemp makes 0600; give the file the mode open() would
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
