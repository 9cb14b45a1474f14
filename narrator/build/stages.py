"""What the build's stages share: its setting (settle), the log of files made, the result a build hands back (or
Unfinished; with_stages adds other tasks' figures), the clock of its stages' busy time, the mastered WAV the book
files read, and the subtitles written from the chapters' placements."""

from __future__ import annotations

import contextlib
import os
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TypeVar

from ..core import errors
from ..core.outputkinds import OutputKind
from ..core.presets import PRESETS, Preset
from ..core.records import ChapterRow, Placement, QaFile, Stage
from ..job.spec import Job
from ..synthesis.script import Script
from .assemble import ChapterAudio, Framing
from .fileplan import FilePlanner, PlannedFile, is_stale, plan_files
from .mastering import master_chapter, mastering_filters
from .segments import FRAME
from .subtitles import chapter_cues, write_subtitles
from .writers import write_cover

FileProgress = Callable[[int, int], None]  # (audio files done, of how many): a progress display's feed


@dataclass
class BuildResult:
    outputs: list[Path]
    chapters: list[ChapterRow]
    placements: dict[str, Placement]  # chunk id -> where its take sits in its chapter
    fingerprints: dict[str, str]  # output path relative to the output folder -> fingerprint
    qa: list[QaFile] = field(default_factory=list)
    reused: bool = False
    stage_seconds: dict[Stage, float] = field(default_factory=dict)  # busy time per stage, summed over threads
    stage_runs: dict[Stage, int] = field(default_factory=dict)  # times each stage ran
    first_chapter_at: float | None = None  # when (time.monotonic()) the first chapter's files were all made


Figure = TypeVar("Figure", int, float)


def _summed(counts: dict[Stage, Figure], more: dict[Stage, Figure]) -> dict[Stage, Figure]:
    """Per-stage figures added up, in the order the stages first appear."""
    return {**counts, **{stage: counts.get(stage, 0) + value for stage, value in more.items()}}


def with_stages(built: BuildResult, seconds: dict[Stage, float], runs: dict[Stage, int]) -> BuildResult:
    """The build's figures with the stages of other tasks of its run added (its chapters' tasks, on Ray)."""
    return replace(
        built, stage_seconds=_summed(built.stage_seconds, seconds), stage_runs=_summed(built.stage_runs, runs)
    )


class StageClock:
    """Busy seconds per stage, summed over the threads that ran it (stages overlap, so these add up to more
    than the wall time)."""

    def __init__(self) -> None:
        self.seconds: dict[Stage, float] = {}
        self.runs: dict[Stage, int] = {}
        self._lock = threading.Lock()

    @contextlib.contextmanager
    def __call__(self, stage: Stage) -> Iterator[None]:
        start = time.monotonic()
        try:
            yield
        finally:
            with self._lock:
                self.seconds[stage] = self.seconds.get(stage, 0.0) + time.monotonic() - start
                self.runs[stage] = self.runs.get(stage, 0) + 1


def write_all_subtitles(script: Script, chapters: list[ChapterAudio], planned: list[PlannedFile]) -> None:
    """Cheap, so always written from this run's placements: per chapter, and for the book on the M4B's
    timeline."""
    kinds = [k.name for k in {f.kind.name: f.kind for f in planned if not f.kind.audio}.values()]
    if not kinds:
        return
    stems = {f.chapter: f.path.with_suffix("") for f in planned if not f.kind.audio}
    book_cues = []
    offset = 0.0
    for chapter in chapters:
        chunks = script.by_chapter[chapter.index]
        blocks = script.chapters[chapter.index].blocks
        write_subtitles(chapter_cues(chapter, chunks, blocks), stems[chapter.index], kinds)
        book_cues += chapter_cues(chapter, chunks, blocks, offset)
        offset += chapter.duration
    write_subtitles(book_cues, stems[None], kinds)


def master_to_wav(chapter: ChapterAudio, preset: Preset, headroom: float = 0.0) -> ChapterAudio:
    """The chapter at the preset's target, as a WAV of its own; its duration unchanged (resampled at most)."""
    assert chapter.gain is not None
    mastered = chapter.wav.with_name(f"{chapter.wav.stem}-mastered{f'-{headroom:.2f}' if headroom else ''}.wav")
    master_chapter(chapter.wav, mastered, mastering_filters(preset, chapter.gain, headroom=headroom))
    rate = preset.sample_rate or chapter.rate
    return replace(chapter, wav=mastered, rate=rate, samples=round(chapter.samples * rate / chapter.rate), gain=None)


@dataclass(frozen=True)
class Unfinished:
    """A build that stopped because some chapter's takes will not come in this run (a take failed, the run
    stopped): the chapter files it finished before, relative path -> fingerprint, for the manifest to keep."""

    finished: dict[str, str]


@dataclass(frozen=True)
class BuildSetting:
    """What one build is of, settled once its first takes are stored: the job and the book's tags, what is on
    disk, where it works, the mastering, the rates, and the whole-book files it makes (streamed through one
    encoder, or joined from segments). Shared, read-only, by every chapter's build and the book's join; small
    (no text of the book), so that a chapter's build on another machine is sent only its own chapter's."""

    job: Job
    title: str  # the book's title and author, for the files' tags
    author: str | None
    before: dict[str, str]  # output path relative to the output folder -> fingerprint on disk
    work_dir: Path
    cover_file: Path | None
    preset: Preset | None  # None: no mastering, or only subtitles to write
    take_rate: int  # the takes' rate, what chapters are assembled at
    rate: int  # the book files' rate
    framing: Framing | None
    streamed: tuple[OutputKind, ...]
    segmented: tuple[OutputKind, ...]

    @property
    def out_dir(self) -> Path:
        return self.job.output.dir


def settle(
    script: Script,
    planner: FilePlanner,
    before: dict[str, str],
    work_dir: Path,
    *,
    while_synthesizing: bool,
    stream_books: bool = True,
) -> BuildSetting:
    """The build's setting, once the first chapter's takes are stored (they tell the rate). While synthesis still
    runs every whole-book file may have to be made (their fingerprints are known only at the end); otherwise just
    those out of date. ``stream_books``: false for the chapters' tasks (rayrun.py), whose book's join feeds them."""
    first = script.cache.layout(script.keys[script.chunks[0].id])
    if first is None:
        raise errors.TakeVanished()
    preset = PRESETS[script.job.output.mastering]
    rate = (preset.sample_rate if preset else None) or first.rate
    books = planner.book_kinds
    if not while_synthesizing:
        everything = plan_files(script, planner)
        out_dir = script.job.output.dir
        books = [f.kind for f in everything if f.chapter is None and is_stale(f, before, out_dir)]
        if not any(f.kind.audio and is_stale(f, before, out_dir) for f in everything):
            preset = None  # only subtitles to write: the takes' placements are all they need
    return BuildSetting(
        script.job,
        script.document.title,
        script.document.author,
        before,
        work_dir,
        write_cover(script.document.cover, work_dir),
        preset,
        first.rate,
        rate,
        Framing(FRAME, first.rate, rate) if planner.framed else None,
        tuple(k for k in books if k.audio and not k.segmented) if stream_books else (),
        tuple(k for k in books if k.segmented),
    )


class FileLog:
    """The audio files a build has made (for QA, and the progress bar), and the chapter files among them (what a
    stopped build has finished). Written from the build's threads."""

    def __init__(self, out_dir: Path, progress: FileProgress | None, total: int):
        self.out_dir, self.progress, self.total = out_dir, progress, total
        self.made: list[PlannedFile] = []
        self.finished: dict[str, str] = {}  # chapter files: relative path -> fingerprint
        self.times: dict[Path, float] = {}  # each file made: when (time.monotonic()) it was finished
        self._lock = threading.Lock()
        if progress is not None:
            progress(0, total)

    def done(self, f: PlannedFile) -> None:
        with self._lock:
            self.made.append(f)
            self.times[f.path] = time.monotonic()
            if f.chapter is not None:
                self.finished[os.path.relpath(f.path, self.out_dir)] = f.fingerprint
            if self.progress is not None:
                self.progress(len(self.made), max(self.total, len(self.made)))
