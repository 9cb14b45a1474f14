"""Content-addressed takes: audio stored under a hash of everything that shapes the sound."""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import time
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..core.audio import Audio, WavLayout, atomic_write, read_wav, wav_layout
from ..core.errors import ToolError
from ..core.takefile import TakeFile
from ..core.workspace import read_through_dir

if TYPE_CHECKING:
    from .remote import RemoteStore

CACHE_VERSION = 1
log = logging.getLogger(__name__)


def take_key(fingerprint: dict[str, Any], text: str) -> str:
    """``fingerprint`` is the provider's: kind, model, voice, instructions, speed, format, and so on."""
    payload = json.dumps({"v": CACHE_VERSION, "voice": fingerprint, "text": text}, sort_keys=True)
    return hashlib.sha256(payload.encode("utf-8")).hexdigest()


def open_cache(location: Path | str, out_dir: Path) -> TakeCache:
    """A job's take cache: a folder, or object storage read through a folder of the output folder's."""
    if isinstance(location, Path):
        return TakeCache(location)
    from .remote import RemoteStore

    return TakeCache(read_through_dir(out_dir), RemoteStore(location))


class TakeCache:
    """One WAV per key under ``root/takes/ab/abcdef….wav``. Writes are atomic, so a run killed at any
    moment leaves only whole takes; shared safely by several jobs and processes. With a ``remote`` store (a cache
    on object storage, remote.py), ``root`` is the run's local read-through folder: a take is fetched from the
    store when first read, and each take made is stored there too."""

    def __init__(self, root: Path, remote: RemoteStore | None = None):
        self.root = root
        self.remote = remote

    def path(self, key: str) -> Path:
        """Where the take is (or will be, once read: see ``local``) on this machine."""
        return self.root / "takes" / key[:2] / f"{key}.wav"

    def has(self, key: str) -> bool:
        return self.path(key).is_file() or (self.remote is not None and self.remote.has(key))

    def fetch(self, keys: Iterable[str], workers: int = 8) -> None:
        """Bring the remote store's takes of ``keys`` to this machine now, checked (several at once): a run asks
        before deciding what to request, so a damaged object is made again instead of failing the build. A take
        this machine has and the store lacks (its store failed in an earlier run) is stored now."""
        if self.remote is None:
            return
        remote, wanted = self.remote, list(dict.fromkeys(keys))
        missing = [k for k in wanted if remote.has(k) and not self.path(k).is_file()]
        unstored = [k for k in wanted if not remote.has(k) and self.path(k).is_file()]
        with ThreadPoolExecutor(workers, thread_name_prefix="fetch") as pool:
            list(pool.map(self.local, missing))
            list(pool.map(lambda k: store_remotely(remote, k, self.path(k), self.audio_hash(k)), unstored))

    def ready(self, keys: Iterable[str]) -> None:
        """Before a run decides what to request: leftovers of killed writers swept, a remote store's takes fetched
        and checked, takes it lacks stored."""
        self.sweep()
        self.fetch(keys)

    def local(self, key: str) -> Path:
        """The take's file on this machine, fetched from the remote store first if need be (it may still not
        exist: a take nobody made, or a damaged object, which the store removed)."""
        path = self.path(key)
        if self.remote is not None and not path.is_file():
            self.remote.fetch(key, path)
        return path

    def audio_hash(self, key: str) -> str | None:
        """SHA-256 of the take's samples: what came back, where the key is what was asked. Written beside the
        take when it is stored; a take from an older cache gets it here on first use (never requested again)."""
        sidecar = self.path(key).with_suffix(".sha256")
        if self.remote is not None and not sidecar.is_file() and (stored := self.remote.takes().get(key)):
            return min(stored, key=lambda t: t.path).digest  # an object's name says its hash: nothing fetched
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
            return read_wav(self.local(key))
        except FileNotFoundError:
            return None
        except ValueError:  # damaged by something outside narrator: treat as missing
            return None

    def layout(self, key: str) -> WavLayout | None:
        """A take's rate and length, from its header: no samples read."""
        try:
            return wav_layout(self.local(key))
        except (FileNotFoundError, ValueError):
            return None

    def exchange(self, a: str, b: str) -> None:
        """Takes ``a`` and ``b`` change keys (a retake that proof-listening chose goes under its take's own key).
        Each step a rename: whatever stops it, both keys hold a whole take. A cache on this machine only (the
        job's checks refuse proof retakes with a remote store, whose objects are named by their audio)."""
        for suffix in (".wav", ".sha256"):
            first, second = self.local(a).with_suffix(suffix), self.local(b).with_suffix(suffix)
            if not first.exists() or not second.exists():
                continue
            spare = first.with_name(f"{first.name}.exchange")
            os.link(first, spare)
            os.replace(second, first)
            os.replace(spare, second)

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
        return PendingTake(self.path(key), key, self.remote)


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


def store_remotely(remote: RemoteStore, key: str, wav: Path, digest: str | None) -> None:
    """A take into the remote store; a failure is logged, not raised: the take stays in this run's local folder,
    and the next run from it stores it again (TakeCache.fetch)."""
    try:
        if digest is None:
            raise ToolError("its audio cannot be read")
        remote.store(key, wav, digest)
    except (OSError, ToolError) as exc:
        log.warning("could not store take %s in %s: %s", key[:12], remote.url, exc)


class PendingTake(TakeFile):
    """A take being received (core/takefile.py), which joins the cache only on ``commit``, its samples' hash beside
    it; ``discard`` drops it: a body that failed its checks is never cached."""

    def __init__(self, path: Path, key: str = "", remote: RemoteStore | None = None):
        super().__init__(path)
        self.key, self.remote = key, remote

    def commit(self) -> None:
        self.close_wav()
        # the hash first: a take visible in the cache always has it (a killed run leaves at worst a hash alone)
        atomic_write(self.path.with_suffix(".sha256"), self.digest.encode("ascii"))
        super().commit()
        if self.remote is not None:
            store_remotely(self.remote, self.key, self.path, self.digest)
