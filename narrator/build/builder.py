"""From takes to files: every chapter built, then the book joined, then QA of the result.

One pipeline, on every core, that can start while synthesis still runs: chapters are taken in reading order, each
as soon as its takes are stored (gate.py), and built as a task (chapters.py: assembled, mastered, its own files
and its segments of the M4B queued as tasks of their own). The book MP3, if asked for, is one encoder fed each
chapter in order; when every chapter is made, the book is joined (book.py). fileplan.py says what each file is
made of, so only what changed is made again.
"""

from __future__ import annotations

import os
import queue
import shutil
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from ..core import workspace
from ..core.records import ChapterRow, Placement
from ..synthesis.gate import ChapterGate, NotReady
from ..synthesis.script import Script
from .assemble import ChapterAudio
from .book import BookJoin, Made
from .chapters import ChapterBuild, ChapterInput, chapter_input
from .fileplan import FilePlanner, PlannedFile
from .parts import part_row
from .stages import BuildResult, FileLog, FileProgress, Unfinished, settle, write_all_subtitles
from .writers import BookEncoder

# Files written from the chapters' placements (where each take sits) once every chapter is made, before the
# book's audio is joined: cheap, so always written. A stage of this kind is its module plus one line here.
FROM_PLACEMENTS: tuple[Callable[[Script, list[ChapterAudio], list[PlannedFile]], None], ...] = (write_all_subtitles,)


def build_files(
    script: Script,
    planner: FilePlanner,
    before: dict[str, str],
    timings: dict[str, float],
    progress: FileProgress | None = None,
    gate: ChapterGate | None = None,
    prebuilt: dict[str, str] | None = None,
) -> BuildResult | Unfinished:
    """Make every planned file that is not on disk with the fingerprint ``before`` gives it (subtitles are
    always written: they are cheap). With a ``gate``, each chapter waits for its takes; if some never come, the
    chapter files finished so far (Unfinished). ``prebuilt``: chapter files this run made elsewhere
    (build_chapter, as Ray tasks), relative path -> fingerprint: not made again, but checked by QA."""
    # its own folder: providers keep their scratch files in the work folder too, and synthesis may still run
    work_dir = workspace.work_dir(script.job.output.dir) / "build"
    shutil.rmtree(work_dir, ignore_errors=True)
    work_dir.mkdir(parents=True)
    started = time.monotonic()
    try:
        for index in range(len(script.chapters)) if planner.needs_every_chapter else range(1):
            if gate is not None:
                gate.wait(index)
        setting = settle(script, planner, before, work_dir, while_synthesizing=gate is not None)
        files = len(planner.audio_kinds) * len(script.chapters) + len(setting.streamed) + len(setting.segmented)
        build = ChapterBuild(setting, FileLog(setting.out_dir, progress, files), prebuilt)
    except NotReady:
        return Unfinished({})
    join = BookJoin(build, planner)
    made = _make_all(script, build, join, gate)
    if isinstance(made, Unfinished):
        return made
    chapters, planned = made
    timings["outputs"] = time.monotonic() - started
    qa = join.check(chapters, timings)  # while the chapters' WAVs are still here: a file may have to be made again
    shutil.rmtree(work_dir, ignore_errors=True)
    build.store.keep_only({fingerprint for f in planned for fingerprint in f.segments})
    out_dir = script.job.output.dir
    return BuildResult(
        [f.path for f in planned],
        _chapter_rows(chapters, planned),
        _placements(chapters),
        {os.path.relpath(f.path, out_dir): f.fingerprint for f in planned},
        qa,
        stage_seconds=build.clock.seconds,
        stage_runs=build.clock.runs,
        first_chapter_at=_first_chapter_at(planned, build.files.times),
    )


def _first_chapter_at(planned: list[PlannedFile], times: dict[Path, float]) -> float | None:
    """When the first chapter could be played: its audio files all made (by this build: else None)."""
    first = [f.path for f in planned if f.chapter == 0 and f.kind.audio]
    return max(times[path] for path in first) if first and all(path in times for path in first) else None


def _make_all(
    script: Script, build: ChapterBuild, join: BookJoin, gate: ChapterGate | None
) -> tuple[list[ChapterAudio], list[PlannedFile]] | Unfinished:
    """Every chapter built in reading order (each once its takes are stored), the streamed book files fed as
    they come, then the book joined: the chapters as assembled, and every file planned (the book's first)."""
    setting, count = build.setting, len(script.chapters)
    inputs: list[ChapterInput] = []
    streams: list[BookEncoder] = []
    made: list[Made] = []
    with ThreadPoolExecutor(os.cpu_count() or 1) as pool, ThreadPoolExecutor(len(setting.streamed) or 1) as feeders:
        try:
            streams += join.open_streams()
            feeds: list[queue.Queue[Made | None]] = [queue.Queue() for _ in streams]
            feeding = [feeders.submit(join.feed, book, q) for book, q in zip(streams, feeds, strict=True)]
            try:
                for index in range(count):  # in reading order, each chapter once its takes are stored
                    if gate is not None:
                        gate.wait(index)
                    inputs.append(chapter_input(script, join.planner, index))
                    made.append(pool.submit(build.make, inputs[-1], pool))
                    for q in feeds:
                        q.put(made[-1])
            finally:
                for q in feeds:
                    q.put(None)
            chapters = [future.result()[0] for future in made]
            in_book = [future.result()[1] for future in made]  # their lengths place the book MP3's markers
            planned = join.planner.book([chapter.plan for chapter in inputs])
            planned += [f for chapter in inputs for f in chapter.plan.files]
            for write in FROM_PLACEMENTS:
                write(script, chapters, planned)
            join.finish(streams, feeding, in_book, chapters, planned)
        except BaseException as exc:
            for book in streams:
                book.abort()
            if not isinstance(exc, NotReady):
                for future in made:
                    future.cancel()
                raise
            # takes are missing: the chapters begun are finished, and their files recorded as such
            for future in made:
                future.exception()
            for encode in list(build.encodes):
                encode.exception()
            return Unfinished(dict(build.files.finished))
    return chapters, planned


def _placements(chapters: list[ChapterAudio]) -> dict[str, Placement]:
    return {
        p.chunk_id: Placement(offset=round(p.offset, 4), duration=round(p.duration, 4), flags=list(p.flags))
        for c in chapters
        for p in c.placements
    }


def _chapter_rows(chapters: list[ChapterAudio], planned: list[PlannedFile]) -> list[ChapterRow]:
    """Each chapter on the book's timeline; a split chapter's parts on the chapter's (planned in order; one row
    a part, whatever the number of kinds)."""
    rows, start = [], 0.0
    for chapter in chapters:
        parts = {f.part: f.path.stem for f in planned if f.chapter == chapter.index and f.part is not None}
        part_rows = [part_row(chapter, part, name) for part, name in parts.items()] or None
        row = ChapterRow(
            number=chapter.index + 1,
            title=chapter.title,
            start=round(start, 4),
            duration=round(chapter.duration, 4),
            parts=part_rows,
        )
        rows.append(row)
        start += chapter.duration
    return rows
