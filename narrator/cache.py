"""Content-addressed takes: audio stored under a hash of everything that shapes the sound."""

from __future__ import annotations

import hashlib
import json
import time
from pathlib import Path
from typing import Any

from .audio import Audio, atomic_wav, read_wav

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

    def get(self, key: str) -> Audio | None:
        try:
            return read_wav(self.path(key))
        except FileNotFoundError:
            return None
        except ValueError:  # damaged by something outside narrator: treat as missing
            return None

    def sweep(self, older_than: float = 600.0) -> int:
        """Remove temporary files left by writers that were killed mid-write. Only old ones: another
        job sharing this cache may be writing right now (a write takes milliseconds)."""
        removed = 0
        cutoff = time.time() - older_than
        for tmp in self.root.glob("takes/*/.*.tmp"):
            try:
                if tmp.stat().st_mtime < cutoff:
                    tmp.unlink()
                    removed += 1
            except FileNotFoundError:
                pass
        return removed

    def put(self, key: str, audio: Audio) -> Path:
        path = self.path(key)
        with atomic_wav(path, audio.rate) as wav:  # straight to the file: no copy of a 13 MB take
            wav.write(audio.pcm)
        return path
