"""One chapter's build: assembled from its takes (and measured, for mastering), then its own files encoded and its
segments of the whole-book files made, each as a task of its own. The book's join (book.py) reads what it made;
on Ray each chapter is a task of its own (build_chapter)."""

from __future__ import annotations

import os
import shutil
import threading
from collections.abc import Callable, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, replace
from pathlib import Path

from ..core import errors, ffmpeg, workspace
from ..core.audio import Audio
from ..core.outputkinds import OutputKind
from ..core.records import QaFile, Stage
from ..synthesis.cache import TakeCache
from ..synthesis.script import Script
from ..text.chunker import Chunk
from .assemble import ChapterAudio, assemble_chapter
from .fileplan import ChapterPlan, FilePlanner, PlannedFile, bitrate_for, is_stale
from .mastering import LoudnessMeter, check_file, gain_for, mastering_filters
from .parts import part_prelude
from .segments import SegmentStore, encode_segment
from .stages import BuildSetting, FileLog, StageClock, master_to_wav
from .writers import write_chapter


@dataclass(frozen=True)
class ChapterInput:
    """One chapter's slice of the prepared book: all its build needs of it, and nothing of the other chapters
    (on Ray it is what a chapter's task is sent). ``takes``: its chunks, grouped by the take that reads them."""

    index: int
    title: str
    takes: tuple[tuple[Chunk, ...], ...]
    keys: dict[str, str]  # chunk id -> the cache key of its take
    estimates: dict[str, float]  # chunk id -> seconds its voice would take to say it (a missing take's stand-in)
    cache: TakeCache  # where its takes are
    plan: ChapterPlan  # its files and its segments of the book files, with their fingerprints


def chapter_input(script: Script, planner: FilePlanner, index: int) -> ChapterInput:
    """Chapter ``index``'s slice of ``script``; every take of it stored (its plan fingerprints their audio)."""
    chunks = script.by_chapter[index]
    return ChapterInput(
        index,
        script.chapters[index].title,
        tuple(tuple(take.chunks) for take in script.takes_by_chapter[index]),
        {c.id: script.keys[c.id] for c in chunks},
        {c.id: script.provider_of(c).profile.speech_seconds(c.spoken) for c in chunks},
        script.cache,
        planner.chapter(index),
    )


class ChapterBuild:
    """Makes chapters, one call each (``make``), on the pool it is given: the chapter as assembled and its
    files and segments, queued as tasks (``encodes``). Its clock, segment store, file log and each file's extra
    headroom (QA's second tries) are the build's. ``prebuilt``: chapter files other tasks of this run made
    (relative path -> fingerprint), not made again but logged, for QA to measure."""

    def __init__(
        self, setting: BuildSetting, files: FileLog, prebuilt: Mapping[str, str] | None = None, checks: bool = True
    ) -> None:
        self.setting = setting
        self.checks = checks  # QA of each chapter file as it is made (off in a Ray task: the join measures)
        self.files = files
        self.prebuilt = dict(prebuilt or {})
        self.clock = StageClock()
        self.store = SegmentStore(workspace.segments_dir(setting.out_dir))
        self.headroom: dict[Path, float] = {}  # dB under the preset's ceiling a file is made again with
        self.checked: dict[Path, QaFile] = {}  # chapter files measured as they were made (check)
        self.encodes: list[Future[object]] = []
        self._lock = threading.Lock()

    def make(self, chapter: ChapterInput, pool: ThreadPoolExecutor) -> tuple[ChapterAudio, ChapterAudio]:
        """(the chapter as assembled, carrying its mastering for the chapter files' encoders to apply; the
        chapter as the book encoders read it, mastered). Queues the chapter's files and its book segments; a
        chapter whose segments are all kept from an earlier run is not mastered at all."""
        with ffmpeg.background():  # its meter and mastering, too: synthesis may still be running
            return self._make(chapter, pool)

    def _make(self, chapter: ChapterInput, pool: ThreadPoolExecutor) -> tuple[ChapterAudio, ChapterAudio]:
        setting, plan = self.setting, chapter.plan
        assembled = self.assemble_and_measure(chapter)
        mine = [f for f in plan.files if f.kind.audio and is_stale(f, setting.before, setting.out_dir)]
        for f in plan.files:  # made by another task of this run: QA measures it all the same
            if f.kind.audio and self.prebuilt.get(os.path.relpath(f.path, setting.out_dir)) == f.fingerprint:
                self.files.done(f)
        if chapter.index == 0:
            # a listener can start once the first chapter plays: its files here, at once; queued, they waited
            # behind the assembly of every chapter whose takes came in meanwhile (34 s of a 216 s run, measured)
            for f in mine:
                self.encode_chapter(f, assembled)
            with self._lock:
                self.encodes += [pool.submit(self.check, f) for f in mine]
            mine = []
        with self._lock:
            self.encodes += [pool.submit(self.encode_and_check, f, assembled) for f in mine]
        missing = [k for k in setting.segmented if not self.store.has(plan.segments[k.name], k)]
        if not (setting.streamed or missing):
            return assembled, assembled
        mastered = assembled
        if setting.preset is not None:
            with ffmpeg.background(), self.clock("mastering"):
                mastered = master_to_wav(assembled, setting.preset)
        with self._lock:
            self.encodes += [pool.submit(self.encode_segment, k, plan.segments[k.name], mastered) for k in missing]
        return assembled, mastered

    def wait_for_encodes(self) -> None:
        """Every file and segment queued so far, made (or its error raised)."""
        for encode in list(self.encodes):
            encode.result()

    def assemble_and_measure(self, chapter: ChapterInput) -> ChapterAudio:
        preset = self.setting.preset
        if preset is None:
            with self.clock("assembly"):
                return self.assemble(chapter)
        with self.clock("assembly"):
            meter = LoudnessMeter(preset, self.setting.take_rate, f"chapter {chapter.index + 1}")
            try:
                assembled = self.assemble(chapter, meter.write)
            except BaseException:
                meter.abort()
                raise
            return replace(assembled, gain=gain_for(preset, meter.result()))

    def assemble(self, chapter: ChapterInput, tap: Callable[[bytes], None] | None = None) -> ChapterAudio:
        setting = self.setting

        def load_take(chunk: Chunk) -> Audio:
            audio = chapter.cache.get(chapter.keys[chunk.id])
            if audio is None:
                raise errors.TakeVanished(chunk.id)
            return audio

        def estimate(chunk: Chunk) -> float:
            return chapter.estimates[chunk.id]

        wav = setting.work_dir / f"chapter-{chapter.index + 1:04d}.wav"
        takes, pauses = [list(t) for t in chapter.takes], setting.job.pauses
        return assemble_chapter(
            chapter.index,
            chapter.title,
            takes,
            load_take,
            pauses,
            setting.take_rate,
            wav,
            estimate,
            tap,
            setting.framing,
        )

    def encode_segment(
        self, kind: OutputKind, fingerprint: str, chapter: ChapterAudio, dest: Path | None = None
    ) -> Path:
        """One chapter's segment of a book file, from the chapter as the book reads it (mastered): kept in the
        store for the runs to come, unless ``dest`` says where (a segment made again with more headroom)."""
        dest = dest or self.store.path(fingerprint, kind)
        bitrate = bitrate_for(self.setting.job, kind)
        with ffmpeg.background(), self.clock("book_encoding"):  # synthesis, if still running, comes first
            encode_segment(
                chapter.wav, dest, kind=kind, bitrate=bitrate, samples=chapter.samples, first=chapter.index == 0
            )
        return dest

    def encode_and_check(self, f: PlannedFile, chapter: ChapterAudio) -> None:
        self.encode_chapter(f, chapter)
        self.check(f)

    def check(self, f: PlannedFile) -> None:
        """A chapter file measured against the preset as soon as it is made, while synthesis may still run, rather
        than at the end of the run with the book's files (book.py's check takes the result)."""
        if self.setting.preset is None or not self.checks:
            return
        with ffmpeg.background(), self.clock("qa"):
            qa = check_file(f.path, self.setting.preset)
        with self._lock:
            self.checked[f.path] = qa

    def encode_chapter(self, f: PlannedFile, chapter: ChapterAudio) -> None:
        setting = self.setting
        title = chapter.title + (f.part.label if f.part else "")
        prelude = part_prelude(chapter, f.part, setting.job.pauses)
        filters = mastering_filters(setting.preset, chapter.gain or 0.0, prelude, self.headroom.get(f.path, 0.0))
        with ffmpeg.background(), self.clock("encoding"):
            write_chapter(
                chapter.wav,
                f.path,
                filters=filters,
                kind=f.kind,
                title=title,
                album=setting.title,
                artist=setting.author,
                track=f.track[0],
                total=f.track[1],
                cover_file=setting.cover_file,
                bitrate=bitrate_for(setting.job, f.kind),
            )
        self.files.done(f)


def chapter_pending(script: Script, planner: FilePlanner, before: dict[str, str], index: int) -> bool:
    """Has chapter ``index`` a file or a whole-book segment to make (its takes all stored)?"""
    plan, out_dir = planner.chapter(index), script.job.output.dir
    store = SegmentStore(workspace.segments_dir(out_dir))
    return any(f.kind.audio and is_stale(f, before, out_dir) for f in plan.files) or any(
        not store.has(plan.segments[k.name], k) for k in planner.book_kinds if k.segmented
    )


@dataclass(frozen=True)
class ChapterMade:
    """What one chapter's build made on its own (build_chapter): its files, relative path -> fingerprint (its
    segments are in the store), and its stages' busy seconds and runs."""

    files: dict[str, str]
    stage_seconds: dict[Stage, float]
    stage_runs: dict[Stage, int]


def build_chapter(setting: BuildSetting, chapter: ChapterInput) -> ChapterMade:
    """One chapter's files and its whole-book segments, from its slice of the book: the work of one Ray task
    (rayrun.py), in a ``setting`` settled by its book's task without the book files it streams (the book's join
    feeds them). The join finds the files (on disk, fingerprinted) and the segments (in the store). Scratch space
    of its own, removed after."""
    work_dir = workspace.work_dir(setting.out_dir) / f"chapter-{chapter.index + 1}-{os.getpid()}"
    shutil.rmtree(work_dir, ignore_errors=True)
    work_dir.mkdir(parents=True)
    try:
        build = ChapterBuild(replace(setting, work_dir=work_dir), FileLog(setting.out_dir, None, 0), checks=False)
        with ThreadPoolExecutor(os.cpu_count() or 1) as pool:
            build.make(chapter, pool)
            build.wait_for_encodes()
        return ChapterMade(dict(build.files.finished), build.clock.seconds, build.clock.runs)
    finally:
        shutil.rmtree(work_dir, ignore_errors=True)
