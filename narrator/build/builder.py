"""From takes to files: assemble each chapter, master it, encode it, write subtitles, check the result.

One pipeline, on every core, that can start while synthesis still runs: chapters are taken in reading order, each
as soon as its takes are stored (gate.py), and assembled and mastered as a task; that task queues the chapter's
own files and its segment of the M4B (segments.py) as tasks of their own. The book MP3, if asked for, is one
encoder fed each chapter in order. When every chapter is made, the M4B is remuxed from its segments. fileplan.py
says what each file is made of, so only what changed is made again.
"""

from __future__ import annotations

import os
import queue
import shutil
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import replace
from pathlib import Path

from ..core import errors, ffmpeg, workspace
from ..core.audio import Audio
from ..core.outputkinds import OutputKind
from ..core.presets import PRESETS, Preset
from ..core.records import ChapterRow, Placement, QaFile
from ..synthesis.gate import ChapterGate, NotReady
from ..synthesis.scheduler import SynthesisOutcome
from ..synthesis.script import Script
from ..text.chunker import Chunk
from .assemble import ChapterAudio, Framing, assemble_chapter
from .fileplan import ChapterPlan, FilePlanner, PlannedFile, bitrate_for, is_stale, plan_files
from .mastering import LoudnessMeter, check_file, gain_for, mastering_filters
from .parts import part_prelude, part_row
from .segments import FRAME, Segment, SegmentStore, encode_segment, join_segments
from .stages import BuildResult, FileProgress, PriorWork, StageClock, master_to_wav, write_all_subtitles
from .writers import BookEncoder, book_tags, write_chapter, write_cover

Made = Future[tuple[ChapterAudio, ChapterAudio]]


def build_files(
    script: Script,
    planner: FilePlanner,
    before: dict[str, str],
    timings: dict[str, float],
    progress: FileProgress | None = None,
    gate: ChapterGate | None = None,
    prebuilt: dict[str, str] | None = None,
) -> BuildResult:
    """Make every planned file that is not on disk with the fingerprint ``before`` gives it (subtitles are
    always written: they are cheap). With a ``gate``, each chapter waits for its takes; NotReady, carrying the
    chapter files finished (``finished``), if some never come. ``prebuilt``: chapter files this run made
    elsewhere (build_chapter, as Ray tasks), relative path -> fingerprint: not made again, but checked by QA."""
    # its own folder: providers keep their scratch files in the work folder too, and synthesis may still run
    work_dir = workspace.work_dir(script.job.output.dir) / "build"
    shutil.rmtree(work_dir, ignore_errors=True)
    work_dir.mkdir(parents=True)
    started = time.monotonic()
    build = _Build(script, planner, before, work_dir, progress, gate)  # before: prebuilt included (outputs.py)
    build.prebuilt = prebuilt or {}
    chapters = build.run()
    timings["outputs"] = time.monotonic() - started
    qa = build.check(timings)  # while the chapters' WAVs are still here: a file may have to be made again
    shutil.rmtree(work_dir, ignore_errors=True)
    planned = build.planned
    build.store.keep_only({fingerprint for f in planned for fingerprint in f.segments})
    placements = {
        p.chunk_id: Placement(offset=round(p.offset, 4), duration=round(p.duration, 4), flags=list(p.flags))
        for c in chapters
        for p in c.placements
    }
    rows, start = [], 0.0
    for chapter in chapters:
        # where each file of a split chapter begins and ends on the chapter's timeline (planned in order; one row
        # a part, whatever the number of kinds)
        parts = {f.part: f.path.stem for f in planned if f.chapter == chapter.index and f.part is not None}
        part_rows = [part_row(chapter, part, name) for part, name in parts.items()] or None
        rows.append(
            ChapterRow(
                number=chapter.index + 1,
                title=chapter.title,
                start=round(start, 4),
                duration=round(chapter.duration, 4),
                parts=part_rows,
            )
        )
        start += chapter.duration
    out_dir = script.job.output.dir
    fingerprints = {os.path.relpath(f.path, out_dir): f.fingerprint for f in planned}
    return BuildResult(
        [f.path for f in planned],
        rows,
        placements,
        fingerprints,
        qa,
        stage_seconds=build.clock.seconds,
        stage_runs=build.clock.runs,
    )


class _Build:
    def __init__(
        self,
        script: Script,
        planner: FilePlanner,
        before: dict[str, str],
        work_dir: Path,
        progress: FileProgress | None,
        gate: ChapterGate | None,
    ):
        self.script, self.planner, self.before, self.gate = script, planner, before, gate
        self.work_dir = work_dir
        self.progress = progress
        self.clock = StageClock()
        self.store = SegmentStore(workspace.segments_dir(script.job.output.dir))
        self.cover_file = write_cover(script.document.cover, work_dir)
        self.plans: dict[int, ChapterPlan] = {}
        self.planned: list[PlannedFile] = []  # every file, once run() is done: the book's first
        self.made: list[PlannedFile] = []  # the audio files made, for QA
        self.finished: dict[str, str] = {}  # chapter files made (relative path -> fingerprint), should the run stop
        self.chapters: list[ChapterAudio] = []  # as assembled, once run() is done
        self.headroom: dict[Path, float] = {}  # dB under the preset's ceiling a file is made again with
        self.encodes: list[Future[object]] = []
        self.prebuilt: dict[str, str] = {}
        self._lock = threading.Lock()
        self.preset: Preset | None = PRESETS[script.job.output.mastering]
        # the whole-book files that may have to be made: all of them while synthesis runs (their fingerprints are
        # known only at the end); otherwise just those out of date
        books = planner.book_kinds
        if gate is None:
            everything = plan_files(script, planner)
            out_dir = script.job.output.dir
            books = [f.kind for f in everything if f.chapter is None and is_stale(f, before, out_dir)]
            if not any(f.kind.audio and is_stale(f, before, out_dir) for f in everything):
                self.preset = None  # only subtitles to write: the takes' placements are all they need
        self.streamed = [k for k in books if k.audio and not k.segmented]  # one encoder over the whole book
        self.segmented = [k for k in books if k.segmented]  # segments joined by remuxing

    def file_done(self, f: PlannedFile) -> None:
        with self._lock:
            self.made.append(f)
            if f.chapter is not None:
                self.finished[os.path.relpath(f.path, self.script.job.output.dir)] = f.fingerprint
            if self.progress is not None:
                self.progress(len(self.made), max(self.total_files(), len(self.made)))

    def total_files(self) -> int:
        """The audio files the build may make (chapter parts and QA's second tries may add to it)."""
        return len(self.planner.audio_kinds) * len(self.script.chapters) + len(self.streamed) + len(self.segmented)

    def wait(self, index: int) -> None:
        if self.gate is not None:
            self.gate.wait(index)

    def setup(self) -> None:
        """What the first chapter's takes tell: the rate the book is assembled at."""
        first = self.script.cache.layout(self.script.keys[self.script.chunks[0].id])
        if first is None:
            raise errors.TakeVanished()
        self.take_rate = first.rate
        preset = PRESETS[self.script.job.output.mastering]
        self.rate = (preset.sample_rate if preset else None) or first.rate  # the book files' rate
        self.framing = Framing(FRAME, self.take_rate, self.rate) if self.planner.framed else None

    def run(self) -> list[ChapterAudio]:
        count = len(self.script.chapters)
        for index in range(count) if self.planner.needs_every_chapter else range(1):
            self.wait(index)
        self.setup()
        if self.progress is not None:
            self.progress(0, self.total_files())
        streams: list[BookEncoder] = []
        made: list[Made] = []
        with ThreadPoolExecutor(os.cpu_count() or 1) as pool, ThreadPoolExecutor(len(self.streamed) or 1) as feeders:
            try:
                for kind in self.streamed:
                    bitrate = bitrate_for(self.script.job, kind)
                    path = self.planner.book_path(kind)
                    with ffmpeg.background(10):  # ahead of the rest of the back end, behind synthesis
                        book = BookEncoder(path, kind=kind, rate=self.rate, bitrate=bitrate, work_dir=self.work_dir)
                    streams.append(book)
                feeds: list[queue.Queue[Made | None]] = [queue.Queue() for _ in streams]
                feeding = [feeders.submit(self.feed, book, q) for book, q in zip(streams, feeds, strict=True)]
                try:
                    for index in range(count):  # in reading order, each chapter once its takes are stored
                        self.wait(index)
                        made.append(pool.submit(self.make_chapter, index, pool))
                        for q in feeds:
                            q.put(made[-1])
                finally:
                    for q in feeds:
                        q.put(None)
                chapters = self.chapters = [future.result()[0] for future in made]
                in_book = [future.result()[1] for future in made]  # their lengths place the book MP3's markers
                self.planned = self.planner.book([self.plans[i] for i in range(count)])
                self.planned += [f for i in range(count) for f in self.plans[i].files]
                write_all_subtitles(self.script, chapters, self.planned)
                self.finish_books(streams, feeding, in_book)
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
                for encode in list(self.encodes):
                    encode.exception()
                exc.finished = dict(self.finished)
                raise
        return chapters

    def finish_books(
        self, streams: list[BookEncoder], feeding: list[Future[None]], in_book: list[ChapterAudio]
    ) -> None:
        """Every chapter is made: the whole-book files that are out of date after all are finished or joined."""
        out_dir = self.script.job.output.dir
        books = {f.kind.name: f for f in self.planned if f.chapter is None}
        for book, fed in zip(streams, feeding, strict=True):
            fed.result()
            if is_stale(books[book.kind.name], self.before, out_dir):
                self.finish_book(books[book.kind.name], book, in_book)
            else:
                book.abort()  # made while synthesis ran, and the same as the one on disk after all
        for encode in self.encodes:
            encode.result()
        for kind in self.segmented:
            if is_stale(books[kind.name], self.before, out_dir):
                self.join(books[kind.name], [self.store.path(fp) for fp in books[kind.name].segments])

    def make_chapter(self, index: int, pool: ThreadPoolExecutor) -> tuple[ChapterAudio, ChapterAudio]:
        """(the chapter as assembled, carrying its mastering for the chapter files' encoders to apply; the
        chapter as the book encoders read it, mastered). Queues the chapter's files and its book segments; a
        chapter whose segments are all kept from an earlier run is not mastered at all."""
        with ffmpeg.background():  # its meter and mastering, too: synthesis may still be running
            return self._make_chapter(index, pool)

    def _make_chapter(self, index: int, pool: ThreadPoolExecutor) -> tuple[ChapterAudio, ChapterAudio]:
        plan = self.plans[index] = self.planner.chapter(index)
        chapter = self.assemble_and_measure(index)
        out_dir = self.script.job.output.dir
        mine = [f for f in plan.files if f.kind.audio and is_stale(f, self.before, out_dir)]
        for f in plan.files:  # made by another task of this run: QA measures it all the same
            if f.kind.audio and self.prebuilt.get(os.path.relpath(f.path, out_dir)) == f.fingerprint:
                self.file_done(f)
        with self._lock:
            self.encodes += [pool.submit(self.encode_chapter, f, chapter) for f in mine]
        missing = [k for k in self.segmented if not self.store.has(plan.segments[k.name])]
        if not (self.streamed or missing):
            return chapter, chapter
        mastered = chapter
        if self.preset is not None:
            with ffmpeg.background(), self.clock("mastering"):
                mastered = master_to_wav(chapter, self.preset)
        with self._lock:
            self.encodes += [pool.submit(self.encode_segment, k, plan.segments[k.name], mastered) for k in missing]
        return chapter, mastered

    def assemble_and_measure(self, index: int) -> ChapterAudio:
        preset = self.preset
        if preset is None:
            with self.clock("assembly"):
                return self.assemble(index)
        with self.clock("assembly"):
            meter = LoudnessMeter(preset, self.take_rate, f"chapter {index + 1}")
            try:
                chapter = self.assemble(index, meter.write)
            except BaseException:
                meter.abort()
                raise
            return replace(chapter, gain=gain_for(preset, meter.result()))

    def assemble(self, index: int, tap: Callable[[bytes], None] | None = None) -> ChapterAudio:
        script = self.script

        def load_take(chunk: Chunk) -> Audio:
            audio = script.cache.get(script.keys[chunk.id])
            if audio is None:
                raise errors.TakeVanished(chunk.id)
            return audio

        def estimate(chunk: Chunk) -> float:
            return script.provider_of(chunk).profile.speech_seconds(chunk.spoken)

        wav = self.work_dir / f"chapter-{index + 1:04d}.wav"
        title, takes = script.chapters[index].title, [t.chunks for t in script.takes_by_chapter[index]]
        return assemble_chapter(
            index, title, takes, load_take, script.job.pauses, self.take_rate, wav, estimate, tap, self.framing
        )

    def feed(self, book: BookEncoder, chapters: queue.Queue[Made | None]) -> None:
        while (future := chapters.get()) is not None:
            wav = future.result()[1].wav
            with self.clock("book_encoding"):
                book.feed(wav)

    def finish_book(self, f: PlannedFile, book: BookEncoder, in_book: list[ChapterAudio]) -> None:
        job, doc = self.script.job, self.script.document
        tags = book_tags(book.kind, doc.title, doc.author, job.narrator, job.year, job.description)
        with self.clock("book_encoding"):
            book.finish(in_book, tags, self.cover_file)
        self.file_done(f)

    def encode_segment(
        self, kind: OutputKind, fingerprint: str, chapter: ChapterAudio, dest: Path | None = None
    ) -> Path:
        """One chapter's segment of a book file, from the chapter as the book reads it (mastered): kept in the
        store for the runs to come, unless ``dest`` says where (a segment made again with more headroom)."""
        dest = dest or self.store.path(fingerprint)
        with ffmpeg.background(), self.clock("book_encoding"):  # synthesis, if still running, comes first
            encode_segment(
                chapter.wav,
                dest,
                kind=kind,
                bitrate=bitrate_for(self.script.job, kind),
                samples=chapter.samples,
                first=chapter.index == 0,
            )
        return dest

    def join(self, f: PlannedFile, paths: list[Path]) -> None:
        """A book file remuxed from its chapters' segments, with markers, tags and cover."""
        job, doc, rate = self.script.job, self.script.document, self.rate
        spans = [round(c.samples * rate / c.rate) for c in self.chapters]  # as mastering resamples them
        segments = [Segment(p, c.title, n) for p, c, n in zip(paths, self.chapters, spans, strict=True)]
        tags = book_tags(f.kind, doc.title, doc.author, job.narrator, job.year, job.description)
        with self.clock("remux"):
            join_segments(
                segments, f.path, kind=f.kind, rate=rate, tags=tags, cover_file=self.cover_file, work_dir=self.work_dir
            )
        self.file_done(f)

    def encode_chapter(self, f: PlannedFile, chapter: ChapterAudio) -> None:
        doc = self.script.document
        title = chapter.title + (f.part.label if f.part else "")
        prelude = part_prelude(chapter, f.part, self.script.job.pauses)
        filters = mastering_filters(self.preset, chapter.gain or 0.0, prelude, self.headroom.get(f.path, 0.0))
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
                cover_file=self.cover_file,
                bitrate=bitrate_for(self.script.job, f.kind),
            )
        self.file_done(f)

    def check(self, timings: dict[str, float]) -> list[QaFile]:
        """Every encoded file measured against the preset, after encoding. An encoder may overshoot the limiter's
        ceiling (MP3 and AAC by up to 1.3 dB on speech, measured): a file over its peak rule is made again with
        that much more headroom, twice at most, before the run reports; what still fails, QA says."""
        preset = self.preset
        files = list({f.path: f for f in self.made}.values())
        if preset is None or not files:
            return []
        started = time.monotonic()
        qa = dict(zip(files, self.measure(files), strict=True))
        for _ in range(2):
            over = {f: dB for f, q in qa.items() if (dB := _overshoot(q, preset)) > 0}
            for f, dB in over.items():
                self.headroom[f.path] = self.headroom.get(f.path, 0.0) + dB + 0.3
                self.make_again(f)
            qa.update(zip(over, self.measure(list(over)), strict=True))
        timings["qa"] = time.monotonic() - started
        return list(qa.values())

    def measure(self, files: list[PlannedFile]) -> list[QaFile]:
        preset = self.preset
        assert preset is not None
        with ThreadPoolExecutor(max_workers=os.cpu_count() or 1) as pool:
            return list(pool.map(lambda f: check_file(f.path, preset), files))

    def make_again(self, f: PlannedFile) -> None:
        if f.chapter is not None:
            self.encode_chapter(f, self.chapters[f.chapter])
            return
        preset = self.preset
        assert preset is not None
        headroom = self.headroom[f.path]
        if f.kind.segmented:  # every segment made again with the headroom (kept in the scratch space only)
            with ThreadPoolExecutor(max_workers=os.cpu_count() or 1) as pool:
                paths = list(
                    pool.map(
                        lambda c: self.encode_segment(
                            f.kind,
                            "",
                            master_to_wav(c, preset, headroom),
                            self.work_dir / f"segment-{c.index}-{headroom:.2f}.aac",
                        ),
                        self.chapters,
                    )
                )
            self.join(f, paths)
            return
        book = BookEncoder(
            f.path, kind=f.kind, rate=self.rate, bitrate=bitrate_for(self.script.job, f.kind), work_dir=self.work_dir
        )
        try:
            mastered = [master_to_wav(c, preset, headroom) for c in self.chapters]
            for chapter in mastered:
                book.feed(chapter.wav)
        except BaseException:
            book.abort()
            raise
        self.finish_book(f, book, mastered)


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
        build = _Build(script, FilePlanner(script), before, work_dir, None, None)
        build.streamed = []  # one encoder over the whole book: the book's own build feeds it
        build.setup()
        with ThreadPoolExecutor(os.cpu_count() or 1) as pool:
            build.make_chapter(index, pool)
            for encode in list(build.encodes):
                encode.result()
        made = dict(build.finished)
        return PriorWork(SynthesisOutcome(), made, build.clock.seconds, build.clock.runs, {script.prepared})
    finally:
        shutil.rmtree(work_dir, ignore_errors=True)


def _overshoot(qa: QaFile, preset: Preset) -> float:
    """dB by which a file's peak passes the preset's rule (0 when it holds)."""
    peak = qa.peak_dbfs if qa.peak_dbfs is not None else qa.true_peak_dbtp
    return max(0.0, peak - preset.max_peak) if peak is not None else 0.0
