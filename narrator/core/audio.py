"""PCM audio as plain values: 16-bit signed little-endian mono samples and a rate. WAV in and out."""

from __future__ import annotations

import contextlib
import functools
import os
import struct
import tempfile
import wave
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import numpy as np

SAMPLE_WIDTH = 2  # bytes: s16le


@functools.cache
def _umask() -> int:
    """The process's umask, read once on first use. Linux shows it in /proc; elsewhere reading it means
    setting it for a moment, which must not happen at import time or while other threads create files."""
    with contextlib.suppress(OSError, ValueError, StopIteration):
        status = Path("/proc/self/status").read_text().splitlines()
        return int(next(line for line in status if line.startswith("Umask:")).split()[1], 8)
    mask = os.umask(0)
    os.umask(mask)
    return mask


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


def frame_energy(pcm: bytes, frame: int) -> np.ndarray:
    """Mean square of each whole frame of ``frame`` samples, a few seconds at a time: a 4096-character take is
    13 MB of PCM, and float copies of all of it at once were most of the build's peak memory."""
    samples = np.frombuffer(pcm, dtype="<i2")
    frames = len(samples) // frame
    energy = np.empty(frames, dtype=np.float64)
    step = max(1, 100_000 // frame) * frame  # whole frames, about 100 000 samples
    for start in range(0, frames * frame, step):
        block = samples[start : min(start + step, frames * frame)].astype(np.float32)
        block *= block
        energy[start // frame : start // frame + len(block) // frame] = block.reshape(-1, frame).mean(axis=1)
    return energy


class PcmStream:
    """16-bit mono PCM arriving in pieces, raw or as a WAV: ``feed`` returns the whole samples received so
    far, ``close`` says whether the stream ended cleanly. A WAV's RIFF and data sizes may be 0xFFFFFFFF
    (or wrong), as when it is streamed: the data then runs to the end of the stream. ``rate`` is known
    from the start for raw PCM, and once the header has been read for a WAV."""

    def __init__(self, *, wav: bool, rate: int | None = None):
        self.wav = wav
        self.rate = rate
        self._header: bytearray | None = bytearray() if wav else None  # until the data chunk starts
        self._remaining: int | None = None  # data bytes the WAV declares, None: to the end
        self.data_offset: int | None = 0 if not wav else None  # where the samples start in the stream
        self.data_size: int | None = None  # as the WAV declares it; None: to the end of the stream
        self._carry = b""  # an odd byte waiting for its other half

    def feed(self, data: bytes) -> bytes:
        if self._header is not None:
            self._header += data
            data = self._read_header()
            if self._header is not None:
                return b""
        if self._remaining is not None:
            data = data[: self._remaining]
            self._remaining -= len(data)
        if self._carry:
            data = self._carry + data
        if len(data) % 2:
            self._carry, data = data[-1:], data[:-1]
        else:
            self._carry = b""
        return data

    def _read_header(self) -> bytes:
        """Parse what has arrived; once the data chunk begins, return the bytes after its header."""
        header = self._header
        assert header is not None
        if len(header) < 12:
            return b""
        if header[:4] != b"RIFF" or header[8:12] != b"WAVE":
            raise ValueError("not a RIFF/WAVE body")
        pos, channels, bits = 12, None, None
        while pos + 8 <= len(header):
            chunk_id, size = bytes(header[pos : pos + 4]), struct.unpack("<I", header[pos + 4 : pos + 8])[0]
            body_start = pos + 8
            if chunk_id == b"data":
                if self.rate is None:
                    raise ValueError("WAV data before its fmt chunk")
                self._remaining = self.data_size = None if size == 0xFFFFFFFF else size
                self.data_offset = body_start
                self._header = None
                return bytes(header[body_start:])
            if chunk_id == b"fmt ":
                if len(header) < body_start + 16:
                    return b""
                fmt, channels, rate, _, _, bits = struct.unpack("<HHIIHH", header[body_start : body_start + 16])
                if fmt not in (1, 0xFFFE):
                    raise ValueError(f"unsupported WAV encoding {fmt} (only PCM)")
                if channels != 1 or bits != 16:
                    raise ValueError(f"expected 16-bit mono WAV, got {bits}-bit with {channels} channels")
                self.rate = rate
            pos = body_start + size + (size & 1)
        return b""

    def close(self) -> None:
        if self._header is not None:
            raise ValueError("WAV body has no data chunk" if len(self._header) >= 12 else "not a RIFF/WAVE body")
        if self._carry and not self.wav:  # a WAV's stray last byte is padding; raw PCM's is half a sample
            raise ValueError("odd number of bytes: the stream was cut mid-sample")


class AtomicFile:
    """A file written under a temporary name beside ``path``: ``commit`` syncs it and renames it into place,
    ``discard`` removes it. Readers never see half a file, and a killed writer leaves only a ``.tmp``."""

    def __init__(self, path: Path, tmp: str | None = None):
        """``tmp``: a file another process wrote beside ``path`` and released (see ``release``), to commit here."""
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        if tmp is not None:
            self._tmp = tmp
            self.file: BinaryIO = open(tmp, "ab")  # noqa: SIM115 - closed by commit() or discard()
            return
        # the writer's PID in the name: a sweep can tell the leftovers of a killed writer from work in progress
        fd, self._tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.{os.getpid()}.", suffix=".tmp")
        self.file = os.fdopen(fd, "wb")

    def release(self) -> str:
        """Close the file, whole, under its temporary name, for another process to commit: that name."""
        self.file.close()
        return self._tmp

    def commit(self) -> None:
        try:
            self.file.flush()
            os.fsync(self.file.fileno())
            self.file.close()
            os.chmod(self._tmp, 0o666 & ~_umask())  # mkstemp makes 0600; give the file the mode open() would
            os.replace(self._tmp, self.path)
        except BaseException:
            self.discard()
            raise

    def discard(self) -> None:
        self.file.close()
        with contextlib.suppress(OSError):
            os.unlink(self._tmp)


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

    def abandon(self) -> None:
        """Let go of a file about to be discarded (the wave module would patch its header on collection)."""
        with contextlib.suppress(Exception):
            self._wave.close()


@contextlib.contextmanager
def atomic_wav(path: Path, rate: int) -> Iterator[WavWriter]:
    """A WAV written piece by piece beside ``path``, then renamed into place: never seen half-written."""
    target = AtomicFile(path)
    writer = WavWriter(target.file, rate)
    try:
        yield writer
        writer.close()
    except BaseException:
        writer.abandon()
        target.discard()
        raise
    target.commit()


@dataclass(frozen=True)
class WavLayout:
    rate: int
    offset: int  # where the samples start in the file
    samples: int  # as many whole samples as the file holds (no more than it declares)

    @property
    def duration(self) -> float:
        return self.samples / self.rate


def wav_layout(path: Path) -> WavLayout:
    """Where a WAV file's samples are, and how many, from its header alone."""
    with path.open("rb") as f:
        return _layout(f)


def _layout(f: BinaryIO) -> WavLayout:
    stream = PcmStream(wav=True)
    while stream.data_offset is None and (block := f.read(4096)):
        stream.feed(block)
    if stream.data_offset is None:
        stream.close()  # raises: says what is wrong with the header
    assert stream.rate is not None and stream.data_offset is not None
    held = os.fstat(f.fileno()).st_size - stream.data_offset
    data = held if stream.data_size is None else min(held, stream.data_size)
    return WavLayout(stream.rate, stream.data_offset, data // SAMPLE_WIDTH)


def read_wav(path: Path) -> Audio:
    """A WAV file's samples, read straight from where they start: one copy in memory (a take is up to
    13 MB, and assembly reads every take of a book)."""
    with path.open("rb") as f:
        layout = _layout(f)
        f.seek(layout.offset)
        return Audio(f.read(layout.samples * SAMPLE_WIDTH), layout.rate)


def atomic_write(path: Path, data: bytes) -> None:
    """Write to a temporary file beside ``path``, fsync, then rename over it: readers never see half a file."""
    target = AtomicFile(path)
    try:
        target.file.write(data)
    except BaseException:
        target.discard()
        raise
    target.commit()
