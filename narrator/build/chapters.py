"""One chapter's build: assembled from its takes (and measured, for mastering), then its own files encoded and its
segments of the whole-book files made, each as a task of its own. The book's join (book.py) reads what it made;
on Ray each chapter is a task of its own (build_chapter)."""

from __future__ import annotations

import os
import shutil
import threading
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import replace
from pathlib import Path

from ..core import errors, ffmpeg, workspace
from ..core.audio import Audio
from ..core.outputkinds import OutputKind
from ..synthesis.scheduler import SynthesisOutcome
from ..synthesis.script import Script
from ..text.chunker import Chunk
from .assemble import ChapterAudio, assemble_chapter
from .fileplan import ChapterPlan, FilePlanner, PlannedFile, bitrate_for, is_stale
from .mastering import LoudnessMeter, gain_for, mastering_filters
from .parts import part_prelude
from .segments import SegmentStore, encode_segment
from .stages import BuildSetting, FileLog, PriorWork, StageClock, master_to_wav, settle
from .writers import write_chapter


class ChapterBuild:
    """Makes chapters, one call each (``make``), on the pool it is given: the chapter as assembled and its
    files and segments, queued as tasks (``encodes``). Its clock, segment store, file log and each file's extra
    headroom (QA's second tries) are the build's."""

    def __init__(self, setting: BuildSetting, files: FileLog) -> None:
        self.setting = setting
        self.files = files
        self.clock = StageClock()
        self.store = SegmentStore(workspace.segments_dir(setting.out_dir))
        self.headroom: dict[Path, float] = {}  # dB under the preset's ceiling a file is made again with
        self.plans: dict[int, ChapterPlan] = {}
        self.encodes: list[Future[object]] = []
        self._lock = threading.Lock()

    def make(self, index: int, pool: ThreadPoolExecutor) -> tuple[ChapterAudio, ChapterAudio]:
        """(the chapter as assembled, carrying its mastering for the chapter files' encoders to apply; the
        chapter as the book encoders read it, mastered). Queues the chapter's files and its book segments; a
        chapter whose segments are all kept from an earlier run is not mastered at all."""
        with ffmpeg.background():  # its meter and mastering, too: synthesis may still be running
            return self._make(index, pool)

    def _make(self, index: int, pool: ThreadPoolExecutor) -> tuple[ChapterAudio, ChapterAudio]:
        setting = self.setting
        plan = self.plans[index] = setting.planner.chapter(index)
        chapter = self.assemble_and_measure(index)
        mine = [f for f in plan.files if f.kind.audio and is_stale(f, setting.before, setting.out_dir)]
        for f in plan.files:  # made by another task of this run: QA measures it all the same
            if f.kind.audio and setting.prebuilt.get(os.path.relpath(f.path, setting.out_dir)) == f.fingerprint:
                self.files.done(f)
        with self._lock:
            self.encodes += [pool.submit(self.encode_chapter, f, chapter) for f in mine]
        missing = [k for k in setting.segmented if not self.store.has(plan.segments[k.name])]
        if not (setting.streamed or missing):
            return chapter, chapter
        mastered = chapter
        if setting.preset is not None:
            with ffmpeg.background(), self.clock("mastering"):
                mastered = master_to_wav(chapter, setting.preset)
        with self._lock:
            self.encodes += [pool.submit(self.encode_segment, k, plan.segments[k.name], mastered) for k in missing]
        return chapter, mastered

    def wait_for_encodes(self) -> None:
        """Every file and segment queued so far, made (or its error raised)."""
        for encode in list(self.encodes):
            encode.result()

    def assemble_and_measure(self, index: int) -> ChapterAudio:
        preset = self.setting.preset
        if preset is None:
            with self.clock("assembly"):
                return self.assemble(index)
        with self.clock("assembly"):
            meter = LoudnessMeter(preset, self.setting.take_rate, f"chapter {index + 1}")
            try:
                chapter = self.assemble(index, meter.write)
            except BaseException:
                meter.abort()
                raise
            return replace(chapter, gain=gain_for(preset, meter.result()))

    def assemble(self, index: int, tap: Callable[[bytes], None] | None = None) -> ChapterAudio:
        script, setting = self.setting.script, self.setting

        def load_take(chunk: Chunk) -> Audio:
            audio = script.cache.get(script.keys[chunk.id])
            if audio is None:
                raise errors.TakeVanished(chunk.id)
            return audio

        def estimate(chunk: Chunk) -> float:
            return script.provider_of(chunk).profile.speech_seconds(chunk.spoken)

        wav = setting.work_dir / f"chapter-{index + 1:04d}.wav"
        title, takes = script.chapters[index].title, [t.chunks for t in script.takes_by_chapter[index]]
        pauses = script.job.pauses
        return assemble_chapter(
            index, title, takes, load_take, pauses, setting.take_rate, wav, estimate, tap, setting.framing
        )

    def encode_segment(
        self, kind: OutputKind, fingerprint: str, chapter: ChapterAudio, dest: Path | None = None
    ) -> Path:
        """One chapter's segment of a book file, from the chapter as the book reads it (mastered): kept in the
        store for the runs to come, unless ``dest`` says where (a segment made again with more headroom)."""
        dest = dest or self.store.path(fingerprint)
        bitrate = bitrate_for(self.setting.script.job, kind)
        with ffmpeg.background(), self.clock("book_encoding"):  # synthesis, if still running, comes first
            encode_segment(
                chapter.wav, dest, kind=kind, bitrate=bitrate, samples=chapter.samples, first=chapter.index == 0
            )
        return dest

    def encode_chapter(self, f: PlannedFile, chapter: ChapterAudio) -> None:
        setting, doc = self.setting, self.setting.script.document
        title = chapter.title + (f.part.label if f.part else "")
        prelude = part_prelude(chapter, f.part, setting.script.job.pauses)
        filters = mastering_filters(setting.preset, chapter.gain or 0.0, prelude, self.headroom.get(f.path, 0.0))
        with ffmpeg.background(), self.clock("encoding"):
            write_chapter(
                chapter.wav,
                f.path,
                filters=filters,
                kind=f.kind,
                title=title,
                album=doc.title,
                artist=doc.author,
                track=f.track[0],
                total=f.track[1],
                cover_file=setting.cover_file,
                bitrate=bitrate_for(setting.script.job, f.kind),
            )
        self.files.done(f)


def chapter_pending(script: Script, planner: FilePlanner, before: dict[str, str], index: int) -> bool:
    """Has chapter ``index`` a file or a whole-book segment to make (its takes all stored)?"""
    plan, out_dir = planner.chapter(index), script.job.output.dir
    store = SegmentStore(workspace.segments_dir(out_dir))
    return any(f.kind.audio and is_stale(f, before, out_dir) for f in plan.files) or any(
        not store.has(plan.segments[k.name]) for k in planner.book_kinds if k.segmented
    )


def build_chapter(script: Script, before: dict[str, str], index: int) -> PriorWork:
    """One chapter's files and its whole-book segments, every take of the book stored: the work of one Ray task
    (rayrun.py). The chapter files made (``prebuilt``, for the book's own build) and its stages; the segments go
    to the store, where that build finds them. Scratch space of its own, removed after."""
    work_dir = workspace.work_dir(script.job.output.dir) / f"chapter-{index + 1}-{os.getpid()}"
    shutil.rmtree(work_dir, ignore_errors=True)
    work_dir.mkdir(parents=True)
    try:
        planner = FilePlanner(script)
        # the book MP3 is one encoder over the whole book: the book's own build feeds it
        setting = settle(script, planner, before, work_dir, while_synthesizing=False, stream_books=False)
        build = ChapterBuild(setting, FileLog(setting.out_dir, None, 0))
        with ThreadPoolExecutor(os.cpu_count() or 1) as pool:
            build.make(index, pool)
            build.wait_for_encodes()
        made = dict(build.files.finished)
        return PriorWork(SynthesisOutcome(), made, build.clock.seconds, build.clock.runs, {script.prepared})
    finally:
        shutil.rmtree(work_dir, ignore_errors=True)
