"""The build's entry: make what is out of date (fileplan.py says what that is, build.py makes it), reuse the last
build when nothing is, and delete the files an earlier build made that this one no longer does.
"""

from __future__ import annotations

import os
from dataclasses import replace
from pathlib import Path

from ..core.records import Manifest, Placement
from ..synthesis.gate import ChapterGate
from ..synthesis.script import Script
from .builder import build_files
from .fileplan import FilePlanner, PlannedFile, is_stale, plan_files
from .stages import BuildResult, FileProgress, Unfinished


def build_outputs(
    script: Script,
    previous: Manifest | None,
    timings: dict[str, float],
    progress: FileProgress | None = None,
    gate: ChapterGate | None = None,
    prebuilt: dict[str, str] | None = None,
) -> BuildResult | Unfinished:
    """Make what is out of date. With a ``gate``, while synthesis still runs: each chapter is built as soon as
    its takes are stored (Unfinished if some never are: the chapter files finished so far, which are on disk)."""
    out_dir = script.job.output.dir
    before = {**(previous.fingerprints if previous else {}), **(prebuilt or {})}
    planner = FilePlanner(script)
    if gate is None or gate.all_ready:
        gate = None
        planned = plan_files(script, planner)  # the build reuses the planner's chapters
        if previous and not any(is_stale(f, before, out_dir) for f in planned):
            fingerprints = {os.path.relpath(f.path, out_dir): f.fingerprint for f in planned}
            return _reuse(previous, planned, fingerprints)
    result = build_files(script, planner, before, timings, progress, gate, prebuilt)
    if isinstance(result, Unfinished):
        return result
    # QA rows of the files not made again carry over; a file no longer planned takes its row with it
    order = {os.path.basename(path): i for i, path in enumerate(result.fingerprints)}
    remade = {q.file for q in result.qa}
    kept = [q for q in (previous.qa if previous else []) if q.file in order and q.file not in remade]
    return replace(result, qa=sorted(kept + result.qa, key=lambda q: order[q.file]))


def _reuse(previous: Manifest, planned: list[PlannedFile], fingerprints: dict[str, str]) -> BuildResult:
    placements = {
        c.id: Placement(offset=c.offset, duration=c.duration or 0.0, flags=c.flags or [])
        for c in previous.chunks
        if c.offset is not None
    }
    return BuildResult(
        outputs=[f.path for f in planned],
        chapters=previous.chapters,
        placements=placements,
        fingerprints=fingerprints,
        qa=previous.qa,
        reused=True,
    )


def remove_stale_outputs(out_dir: Path, previous: Manifest | None, current: set[Path]) -> list[Path]:
    """Files an earlier build wrote (its manifest says so) that this build no longer makes: a renamed or removed
    chapter, a format no longer asked for. Nothing else in the folder is narrator's to delete."""
    removed = []
    for name in previous.outputs if previous else []:
        path = (out_dir / name).resolve()
        if path not in current and path.is_relative_to(out_dir.resolve()) and path.is_file():
            path.unlink()
            removed.append(path)
    return removed
