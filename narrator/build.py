"""From takes to files: assemble each chapter, master it, encode it, write subtitles, check the result.

One pipeline, on every core: each chapter is assembled and mastered as a task; each whole-book encoder is fed
each chapter as soon as it is ready (in order), and each chapter's own files are encoded as tasks queued behind
the chapters, so the book's single-threaded encoder never waits for long. outputs.py decides what to make.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from pathlib import Path

from . import errors, ffmpeg, workspace
from .assemble import ChapterAudio, Framing, assemble_chapter
from .audio import Audio
from .chunker import Chunk
from .mastering import PRESETS, LoudnessMeter, Preset, check_file, gain_for, master_chapter, mastering_filters
from .outputkinds import OutputKind
from .parts import Part, part_prelude, part_row
from .records import ChapterRow, Placement, QaFile
from .script import Script
from .segments import FRAME, Segment, SegmentStore, encode_segment, join_segments
from .spec import Job
from .subtitles import chapter_cues, write_subtitles
from .writers import BookEncoder, book_tags, write_chapter, write_cover


@dataclass(frozen=True)
class PlannedFile:
    path: Path
    kind: OutputKind
    chapter: int | None  # index, or None for a whole-book file
    fingerprint: str
    part: Part | None = None  # a chapter file that holds only part of its chapter
    track: tuple[int, int] = (0, 0)  # chapter files: number and count among the files of their kind
    segments: tuple[str, ...] = ()  # a book file joined from segments: each chapter's segment's fingerprint


@dataclass
class BuildResult:
    outputs: list[Path]
    chapters: list[ChapterRow]
    placements: dict[str, Placement]  # chunk id -> where its take sits in its chapter
    fingerprints: dict[str, str]  # output path relative to the output folder -> fingerprint
    qa: list[QaFile] = field(default_factory=list)
    reused: bool = False
    stage_seconds: dict[str, float] = field(default_factory=dict)  # busy time per stage, summed over threads
    stage_runs: dict[str, int] = field(default_factory=dict)  # times each stage ran


class StageClock:
    """Busy seconds per stage, summed over the threads that ran it (stages overlap, so these add up to more
    than the wall time)."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = {}
        self.runs: dict[str, int] = {}
        self._lock = threading.Lock()

    @contextlib.contextmanager
    def __call__(self, stage: str) -> Iterator[None]:
        start = time.monotonic()
        try:
            yield
        finally:
            with self._lock:
                self.seconds[stage] = self.seconds.get(stage, 0.0) + time.monotonic() - start
                self.runs[stage] = self.runs.get(stage, 0) + 1


FileProgress = Callable[[int, int], None]  # (audio files done, of how many): a progress display's feed


def build_files(
    script: Script,
    planned: list[PlannedFile],
    stale: list[PlannedFile],
    timings: dict[str, float],
    progress: FileProgress | None = None,
) -> BuildResult:
    """Make the ``stale`` files of ``planned`` (subtitles are always written: they are cheap)."""
    work_dir = workspace.work_dir(script.job.output.dir)
    shutil.rmtree(work_dir, ignore_errors=True)
    work_dir.mkdir(parents=True)
    started = time.monotonic()
    build = _Build(script, planned, stale, work_dir, progress)
    chapters = build.run()
    timings["outputs"] = time.monotonic() - started
    qa = build.check(timings)  # while the chapters' WAVs are still here: a file may have to be made again
    shutil.rmtree(work_dir, ignore_errors=True)
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
        rows.append(ChapterRow(number=chapter.index + 1, title=chapter.title, start=round(start, 4),
                               duration=round(chapter.duration, 4), parts=part_rows))  # fmt: skip
        start += chapter.duration
    return BuildResult(
        [f.path for f in planned],
        rows,
        placements,
        {},
        qa,
        stage_seconds=build.clock.seconds,
        stage_runs=build.clock.runs,
    )


class _Build:
    def __init__(self, script: Script, planned: list[PlannedFile], stale: list[PlannedFile], work_dir: Path,
                 progress: FileProgress | None = None):  # fmt: skip
        self.script = script
        self.progress = progress
        self.files_done = 0
        self._done_lock = threading.Lock()
        self.planned = planned
        self.stale = stale
        self.work_dir = work_dir
        self.clock = StageClock()
        self.preset: Preset | None = PRESETS[script.job.output.mastering]
        if not any(f.kind.audio for f in stale):
            self.preset = None  # only subtitles to write: the takes' placements are all they need
        first = script.cache.layout(script.keys[script.chunks[0].id])
        if first is None:
            raise errors.ToolError("the first take vanished from the cache during the run")
        self.take_rate = first.rate
        preset = PRESETS[script.job.output.mastering]
        self.rate = (preset.sample_rate if preset else None) or first.rate  # the book files' rate
        framed = any(f.kind.segmented for f in planned)
        self.framing = Framing(FRAME, self.take_rate, self.rate) if framed else None
        self.store = SegmentStore(workspace.segments_dir(script.job.output.dir))
        self.cover_file = write_cover(script.document.cover, work_dir)
        self.book_files = [f for f in stale if f.chapter is None and f.kind.audio]
        self.streamed = [f for f in self.book_files if not f.kind.segmented]  # one encoder over the whole book
        self.segmented = [f for f in self.book_files if f.kind.segmented]  # segments joined by remuxing
        self.chapter_files = [f for f in stale if f.chapter is not None and f.kind.audio]
        self.chapters: list[ChapterAudio] = []  # as assembled, once run() is done
        self.headroom: dict[Path, float] = {}  # dB under the preset's ceiling a file is made again with

    def file_done(self) -> None:
        with self._done_lock:
            self.files_done += 1
            total = len(self.book_files) + len(self.chapter_files)
            if self.progress is not None:  # a file made again after its QA counts once
                self.progress(min(self.files_done, total), total)

    def run(self) -> list[ChapterAudio]:
        streams: list[BookEncoder] = []
        if self.progress is not None:
            self.progress(0, len(self.book_files) + len(self.chapter_files))
        with (
            ThreadPoolExecutor(max_workers=os.cpu_count() or 1) as pool,
            ThreadPoolExecutor(len(self.streamed) or 1) as feeders,
        ):
            made = [pool.submit(self.make_chapter, i) for i in range(len(self.script.chapters))]
            try:
                for f in self.streamed:
                    bitrate = bitrate_for(self.script.job, f.kind)
                    streams.append(
                        BookEncoder(f.path, kind=f.kind, rate=self.rate, bitrate=bitrate, work_dir=self.work_dir)
                    )
                feeding = [feeders.submit(self.feed, book, made) for book in streams]
                chapters: list[ChapterAudio] = []  # as assembled: placements, durations
                in_book: list[ChapterAudio] = []  # as the book encoders read them: their lengths place the markers
                encodes: list[Future[object]] = []
                for future in made:
                    chapter, mastered = future.result()
                    chapters.append(chapter)
                    in_book.append(mastered)
                    mine = (f for f in self.chapter_files if f.chapter == chapter.index)
                    encodes += [pool.submit(self.encode_chapter, f, chapter) for f in mine]
                    missing = [f for f in self.segmented if not self.store.has(f.segments[chapter.index])]
                    encodes += [pool.submit(self.encode_segment, f, mastered) for f in missing]
                self.chapters = chapters
                write_all_subtitles(self.script, chapters, self.planned)
                for book, fed in zip(streams, feeding, strict=True):
                    fed.result()
                    self.finish_book(book, in_book)
                for encode in encodes:
                    encode.result()
                for f in self.segmented:
                    self.join(f, [self.store.path(fp) for fp in f.segments])
            except BaseException:
                for future in made:
                    future.cancel()
                for book in streams:
                    book.abort()
                raise
        return chapters

    def make_chapter(self, index: int) -> tuple[ChapterAudio, ChapterAudio]:
        """(the chapter as assembled, carrying its mastering for the chapter files' encoders to apply; the
        chapter as the book encoders read it, mastered). Chapter files do not wait for the mastered WAV, and a
        chapter whose book segments are all kept from an earlier run is not mastered at all."""
        preset = self.preset
        if preset is None:
            with self.clock("assembly"):
                chapter = self.assemble(index)
            return chapter, chapter
        with self.clock("assembly"):  # the meter is not niced: the chapter is not ready until it has measured
            meter = LoudnessMeter(preset, self.take_rate, f"chapter {index + 1}")
            try:
                chapter = self.assemble(index, meter.write)
            except BaseException:
                meter.abort()
                raise
            chapter = replace(chapter, gain=gain_for(preset, meter.result()))
        if not self.streamed and all(self.store.has(f.segments[index]) for f in self.segmented):
            return chapter, chapter
        with ffmpeg.background(), self.clock("mastering"):
            return chapter, _master(chapter, preset)

    def assemble(self, index: int, tap: Callable[[bytes], None] | None = None) -> ChapterAudio:
        script = self.script

        def load_take(chunk: Chunk) -> Audio:
            audio = script.cache.get(script.keys[chunk.id])
            if audio is None:
                raise errors.ToolError(f"take for chunk {chunk.id} vanished from the cache during the run")
            return audio

        def estimate(chunk: Chunk) -> float:
            return script.provider_of(chunk).profile.speech_seconds(chunk.spoken)

        wav = self.work_dir / f"chapter-{index + 1:04d}.wav"
        title, takes = script.chapters[index].title, [t.chunks for t in script.takes_by_chapter[index]]
        return assemble_chapter(index, title, takes, load_take, script.job.pauses, self.take_rate, wav, estimate, tap,
                                self.framing)  # fmt: skip

    def feed(self, book: BookEncoder, made: list[Future[tuple[ChapterAudio, ChapterAudio]]]) -> None:
        for future in made:
            wav = future.result()[1].wav
            with self.clock("book_encoding"):
                book.feed(wav)

    def finish_book(self, book: BookEncoder, in_book: list[ChapterAudio]) -> None:
        job, doc = self.script.job, self.script.document
        tags = book_tags(book.kind, doc.title, doc.author, job.narrator, job.year, job.description)
        with self.clock("book_encoding"):
            book.finish(in_book, tags, self.cover_file)
        self.file_done()

    def encode_segment(self, f: PlannedFile, chapter: ChapterAudio, dest: Path | None = None) -> Path:
        """One chapter's segment of a book file, from the chapter as the book reads it (mastered): kept in the
        store for the runs to come, unless ``dest`` says where (a segment made again with more headroom)."""
        dest = dest or self.store.path(f.segments[chapter.index])
        with self.clock("book_encoding"):
            encode_segment(chapter.wav, dest, kind=f.kind, bitrate=bitrate_for(self.script.job, f.kind),
                           samples=chapter.samples, first=chapter.index == 0)  # fmt: skip
        return dest

    def join(self, f: PlannedFile, paths: list[Path]) -> None:
        """A book file remuxed from its chapters' segments, with markers, tags and cover."""
        job, doc, rate = self.script.job, self.script.document, self.rate
        chapters = self.script.chapters
        spans = [self.book_samples(i) for i in range(len(chapters))]
        segments = [Segment(p, c.title, n) for p, c, n in zip(paths, chapters, spans, strict=True)]
        tags = book_tags(f.kind, doc.title, doc.author, job.narrator, job.year, job.description)
        with self.clock("remux"):
            join_segments(segments, f.path, kind=f.kind, rate=rate, tags=tags, cover_file=self.cover_file,
                          work_dir=self.work_dir)  # fmt: skip
        self.file_done()

    def book_samples(self, index: int) -> int:
        """A chapter's length in the book, at the book's rate (as mastering resamples it)."""
        chapter = self.chapters[index]
        return round(chapter.samples * self.rate / chapter.rate)

    def encode_chapter(self, f: PlannedFile, chapter: ChapterAudio) -> None:
        doc = self.script.document
        title = chapter.title + (f.part.label if f.part else "")
        prelude = part_prelude(chapter, f.part, self.script.job.pauses)
        filters = mastering_filters(self.preset, chapter.gain or 0.0, prelude, self.headroom.get(f.path, 0.0))
        with ffmpeg.background(), self.clock("encoding"):
            write_chapter(chapter.wav, f.path, filters=filters, kind=f.kind, title=title, album=doc.title,
                          artist=doc.author, track=f.track[0], total=f.track[1], cover_file=self.cover_file,
                          bitrate=bitrate_for(self.script.job, f.kind))  # fmt: skip
        self.file_done()

    def check(self, timings: dict[str, float]) -> list[QaFile]:
        """Every encoded file measured against the preset, after encoding. An encoder may overshoot the limiter's
        ceiling (MP3 and AAC by up to 1.3 dB on speech, measured): a file over its peak rule is made again with
        that much more headroom, twice at most, before the run reports; what still fails, QA says."""
        preset = self.preset
        files = [f for f in self.stale if f.kind.audio]
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
                paths = list(pool.map(lambda c: self.encode_segment(
                    f, _master(c, preset, headroom), self.work_dir / f"segment-{c.index}-{headroom:.2f}.aac"),
                    self.chapters))  # fmt: skip
            self.join(f, paths)
            return
        book = BookEncoder(f.path, kind=f.kind, rate=self.rate, bitrate=bitrate_for(self.script.job, f.kind),
                           work_dir=self.work_dir)  # fmt: skip
        try:
            mastered = [_master(c, preset, headroom) for c in self.chapters]
            for chapter in mastered:
                book.feed(chapter.wav)
        except BaseException:
            book.abort()
            raise
        self.finish_book(book, mastered)


def _overshoot(qa: QaFile, preset: Preset) -> float:
    """dB by which a file's peak passes the preset's rule (0 when it holds)."""
    peak = qa.peak_dbfs if qa.peak_dbfs is not None else qa.true_peak_dbtp
    return max(0.0, peak - preset.max_peak) if peak is not None else 0.0


def bitrate_for(job: Job, kind: OutputKind) -> str:
    """A preset may demand its own MP3 bitrate (ACX: 192k); everything else takes the job's."""
    preset = PRESETS[job.output.mastering]
    return (preset.mp3_bitrate if preset and kind.preset_bitrate else None) or job.output.bitrate


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
        write_subtitles(chapter_cues(chapter, chunks), stems[chapter.index], kinds)
        book_cues += chapter_cues(chapter, chunks, offset)
        offset += chapter.duration
    write_subtitles(book_cues, stems[None], kinds)


def _master(chapter: ChapterAudio, preset: Preset, headroom: float = 0.0) -> ChapterAudio:
    """The chapter at the preset's target, as a WAV of its own; its duration unchanged (resampled at most)."""
    assert chapter.gain is not None
    mastered = chapter.wav.with_name(f"{chapter.wav.stem}-mastered{f'-{headroom:.2f}' if headroom else ''}.wav")
    master_chapter(chapter.wav, mastered, mastering_filters(preset, chapter.gain, headroom=headroom))
    rate = preset.sample_rate or chapter.rate
    return replace(chapter, wav=mastered, rate=rate, samples=round(chapter.samples * rate / chapter.rate), gain=None)
