"""``narrator cache stats|prune``: what a take cache holds, and removing the takes no listed job uses.

A take is used by a job when the job's book, as it stands, asks for it, or when the job's review file refers to
it (every take of a request an editor had redone, whichever the book uses now). Prune is a dry run unless told
``yes``; it removes only whole takes (with their audio-hash sidecars) older than the prune itself, so a run
writing to the same cache meanwhile loses nothing it is making.
"""

from __future__ import annotations

import os
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from .script import prepare_script
from .spec import Job


@dataclass
class CacheReport:
    root: Path
    takes: int = 0
    bytes: int = 0
    by_voice: Counter[str] = field(default_factory=Counter)  # "provider/voice" (or "unused") -> takes
    unused: list[Path] = field(default_factory=list)  # takes no listed job uses
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


def survey(root: Path, jobs: list[Job], prune: bool = False) -> CacheReport:
    """What the cache at ``root`` holds, against what ``jobs`` use; with ``prune``, the unused takes removed."""
    started = time.time()
    used = used_keys(jobs)
    report = CacheReport(root)
    for path in sorted((root / "takes").glob("*/*.wav")):
        try:
            stat = path.stat()
        except FileNotFoundError:  # removed meanwhile
            continue
        report.takes += 1
        report.bytes += stat.st_size
        voice = used.get(path.stem)
        report.by_voice[voice or "unused"] += 1
        if voice is None and stat.st_mtime < started:
            report.unused.append(path)
            report.unused_bytes += stat.st_size
    if prune:
        for path in report.unused:
            for gone in (path, path.with_suffix(".sha256")):
                try:
                    os.unlink(gone)
                except FileNotFoundError:
                    continue
            report.removed += 1
    return report


def render(report: CacheReport, pruned: bool) -> str:
    mb = 1 / 1_000_000
    lines = [f"{report.root}: {report.takes} takes, {report.bytes * mb:.1f} MB"]
    lines += [f"  {voice}: {count}" for voice, count in sorted(report.by_voice.items())]
    if pruned:
        lines.append(f"removed {report.removed} unused take(s), {report.unused_bytes * mb:.1f} MB")
    else:
        lines.append(f"{len(report.unused)} take(s) no listed job uses, {report.unused_bytes * mb:.1f} MB: "
                     "`narrator cache prune JOB.yaml... --yes` removes them")  # fmt: skip
    return "\n".join(lines)
