"""``narrator cache stats|prune``: what a take cache holds, and removing the takes no listed job uses.

A take is used by a job when the job's book, as it stands, asks for it, or when the job's review file refers to
it (every take of a request an editor had redone, whichever the book uses now). Prune is a dry run unless told
``yes``; it removes only whole takes (with their audio-hash sidecars) older than the prune itself, so a run
writing to the same cache meanwhile loses nothing it is making.
"""

from __future__ import annotations

import contextlib
import functools
import os
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from ..job.spec import Job
from ..synthesis.script import prepare_script


@dataclass(frozen=True)
class CachedTake:
    key: str
    size: int
    modified: float | None  # seconds since the epoch (None: the store does not say: never pruned)
    remove: Callable[[], None]


@dataclass
class CacheReport:
    root: Path | str  # a folder, or a URL of object storage
    takes: int = 0
    bytes: int = 0
    by_voice: Counter[str] = field(default_factory=Counter)  # "provider/voice" (or "unused") -> takes
    unused: list[CachedTake] = field(default_factory=list)  # takes no listed job uses
    unused_bytes: int = 0
    removed: int = 0


def used_keys(jobs: list[Job]) -> dict[str, str]:
    """Every cache key the jobs use, with the voice that made it ("provider/voice")."""
    used: dict[str, str] = {}
    for job in jobs:
        script = prepare_script(job)
        for take in script.takes:
            fingerprint = script.provider_of(take).fingerprint()
            voice = f"{fingerprint.get('provider', '?')}/{fingerprint.get('voice') or 'default'}"
            for key in {script.key_of(take), *script.variant_keys(take)}:
                used[key] = voice
    return used


def survey(location: Path | str, jobs: list[Job], prune: bool = False) -> CacheReport:
    """What the cache at ``location`` holds, against what ``jobs`` use; with ``prune``, the unused takes removed."""
    started = time.time()
    used = used_keys(jobs)
    found = list(_local(location) if isinstance(location, Path) else _remote(location))
    by_voice = Counter(used.get(take.key) or "unused" for take in found)
    # a take stored since this survey began is some run's, not unused
    unused = [t for t in found if t.key not in used and t.modified is not None and t.modified < started]
    if prune:
        for take in unused:
            take.remove()
    return CacheReport(
        location,
        takes=len(found),
        bytes=sum(t.size for t in found),
        by_voice=by_voice,
        unused=unused,
        unused_bytes=sum(t.size for t in unused),
        removed=len(unused) if prune else 0,
    )


def _local(root: Path) -> Iterator[CachedTake]:
    def remover(path: Path) -> Callable[[], None]:
        def remove() -> None:
            for gone in (path, path.with_suffix(".sha256")):
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(gone)

        return remove

    for path in sorted((root / "takes").glob("*/*.wav")):
        try:
            stat = path.stat()
        except FileNotFoundError:  # removed meanwhile
            continue
        yield CachedTake(path.stem, stat.st_size, stat.st_mtime, remover(path))


def _remote(url: str) -> Iterator[CachedTake]:
    from ..synthesis.remote import RemoteStore

    store = RemoteStore(url)
    for take in sorted(store, key=lambda t: t.path):
        yield CachedTake(take.key, take.size, take.modified, functools.partial(store.remove, take))


def render(report: CacheReport, pruned: bool) -> str:
    mb = 1 / 1_000_000
    lines = [f"{report.root}: {report.takes} takes, {report.bytes * mb:.1f} MB"]
    lines += [f"  {voice}: {count}" for voice, count in sorted(report.by_voice.items())]
    if pruned:
        lines.append(f"removed {report.removed} unused take(s), {report.unused_bytes * mb:.1f} MB")
    else:
        lines.append(
            f"{len(report.unused)} take(s) no listed job uses, {report.unused_bytes * mb:.1f} MB: "
            "`narrator cache prune JOB.yaml... --yes` removes them"
        )
    return "\n".join(lines)
