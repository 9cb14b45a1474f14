"""Content-addressed takes: audio stored under a hash of everything that shapes the sound."""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import time
from pathlib import Path
from typing import Any

from .audio import AtomicFile, Audio, WavLayout, WavWriter, atomic_write, read_wav, wav_layout

CACHE_VERSION = 1


def take_key(fingerprint: dict[str, Any], text: str) -> str:
    """``fingerprint`` is the provider's: kind, model, voice, instructions, speed, format, and so on."""
    payload = json.dumps({"v": CACHE_VERSION, "voice": fingerprint, "text": text}, sort_keys=True)
    return hashlib.sha256(payload.encode("utf-8")).hexdigest()


class TakeCache:
    """One WAV per key under ``root/takes/ab/abcdef….wav``. Writes are atomic, so a run killed at any
    moment leaves only whole takes; shared safely by several jobs and processes."""

    def __init__(self, root: Path):
        self.root = root

    def path(self, key: str) -> Path:
        return self.root / "takes" / key[:2] / f"{key}.wav"

    def has(self, key: str) -> bool:
        return self.path(key).is_file()

    def audio_hash(self, key: str) -> str | None:
        """SHA-256 of the take's samples: what came back, where the key is what was asked. Written beside the
        take when it is stored; a take from an older cache gets it here on first use (never requested again)."""
        sidecar = self.path(key).with_suffix(".sha256")
        with contextlib.suppress(OSError, UnicodeDecodeError):
            digest = sidecar.read_text(encoding="ascii").strip()
            if len(digest) == 64:
                return digest
        try:
            layout = wav_layout(self.path(key))
            digest = _sample_hash(self.path(key), layout)
        except (FileNotFoundError, ValueError):
            return None
        atomic_write(sidecar, digest.encode("ascii"))
        return digest

    def get(self, key: str) -> Audio | None:
        try:
            return read_wav(self.path(key))
        except FileNotFoundError:
            return None
        except ValueError:  # damaged by something outside narrator: treat as missing
            return None

    def layout(self, key: str) -> WavLayout | None:
        """A take's rate and length, from its header: no samples read."""
        try:
            return wav_layout(self.path(key))
        except (FileNotFoundError, ValueError):
            return None

    def sweep(self, older_than: float = 600.0) -> int:
        """Remove temporary files left by writers that were killed mid-write: at once when their process is
        gone (its PID is in the name), otherwise once they are old (another job sharing this cache may be
        writing right now; a write takes milliseconds)."""
        removed = 0
        cutoff = time.time() - older_than
        for tmp in self.root.glob("takes/*/.*.tmp"):
            try:
                if not _writer_alive(tmp.name) or tmp.stat().st_mtime < cutoff:
                    tmp.unlink()
                    removed += 1
            except FileNotFoundError:
                pass
        return removed

    def pending(self, key: str) -> PendingTake:
        return PendingTake(self.path(key))


def _writer_alive(name: str) -> bool:
    """``.<take>.wav.<pid>.<random>.tmp``: is that process still running? (Unknown: assume so.)"""
    parts = name.split(".")
    if len(parts) < 5 or not parts[-3].isdigit():
        return True
    try:
        os.kill(int(parts[-3]), 0)
    except ProcessLookupError:
        return False
    except OSError:
        return True
    return True


def _sample_hash(path: Path, layout: WavLayout) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        f.seek(layout.offset)
        left = layout.samples * 2
        while left > 0 and (block := f.read(min(left, 1 << 20))):
            digest.update(block)
            left -= len(block)
    return digest.hexdigest()


class PendingTake:
    """A take being received: PCM goes to a temporary file as it arrives (a 4096-character take is ~13 MB,
    never held in memory), and the take joins the cache only on ``commit``. ``discard`` drops it: a body
    that failed its checks is never cached."""

    def __init__(self, path: Path):
        self.path = path
        self.rate: int | None = None
        self.samples = 0
        self._file: AtomicFile | None = None
        self._wav: WavWriter | None = None
        self._digest = hashlib.sha256()  # of the samples as they arrive: the take's content address

    @property
    def duration(self) -> float:
        return self.samples / self.rate if self.rate else 0.0

    def write(self, pcm: bytes, rate: int) -> None:
        if self._wav is None:
            self._file = AtomicFile(self.path)
            self._wav = WavWriter(self._file.file, rate)
            self.rate = rate
        elif rate != self.rate:
            raise ValueError(f"sample rate changed mid-take: {self.rate} then {rate}")
        if pcm:
            self._wav.write(pcm)
            self._digest.update(pcm)
            self.samples = self._wav.samples

    def commit(self) -> None:
        if self._file is None or self._wav is None:
            raise ValueError("empty take: nothing was written")
        self._wav.close()
        # the hash first: a take visible in the cache always has it (a killed run leaves at worst a hash alone)
        atomic_write(self.path.with_suffix(".sha256"), self._digest.hexdigest().encode("ascii"))
        self._file.commit()

    def discard(self) -> None:
        if self._wav is not None:
            self._wav.abandon()
        if self._file is not None:
            self._file.discard()
