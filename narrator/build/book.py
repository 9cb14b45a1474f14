"""The book's join, once its chapters are built (chapters.py): the book MP3 fed chapter by chapter through one
encoder and finished with its markers, the M4B remuxed from the chapters' segments, tags and cover; then QA
of every file made, with second tries for a file an encoder pushed over the preset's peak."""

from __future__ import annotations

import os
import queue
import time
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

from ..core import ffmpeg
from ..core.presets import Preset
from ..core.records import QaFile
from .assemble import ChapterAudio
from .chapters import ChapterBuild
from .fileplan import FilePlanner, PlannedFile, bitrate_for, is_stale
from .mastering import check_file
from .readalong import write_read_along
from .segments import Segment, join_segments
from .stages import master_to_wav
from .writers import BookEncoder, book_tags

Made = Future[tuple[ChapterAudio, ChapterAudio]]


class BookJoin:
    """Joins what ``chapters`` made into the whole-book files. ``chapters`` (as assembled) and ``planned`` (every
    file of the build) are handed to the calls that need them: they exist only once every chapter is made."""

    def __init__(self, chapters: ChapterBuild, planner: FilePlanner) -> None:
        self.build = chapters
        self.setting = chapters.setting
        self.planner = planner

    def open_streams(self) -> list[BookEncoder]:
        """An encoder per book file fed chapter by chapter (the book MP3)."""
        setting, streams = self.setting, []
        try:
            for kind in setting.streamed:
                bitrate = bitrate_for(setting.job, kind)
                path = self.planner.book_path(kind)
                with ffmpeg.background(10):  # ahead of the rest of the back end, behind synthesis
                    streams.append(
                        BookEncoder(path, kind=kind, rate=setting.rate, bitrate=bitrate, work_dir=setting.work_dir)
                    )
        except BaseException:
            for book in streams:  # those already started end with the one that could not start
                book.abort()
            raise
        return streams

    def feed(self, book: BookEncoder, chapters: queue.Queue[Made | None]) -> None:
        while (future := chapters.get()) is not None:
            wav = future.result()[1].wav
            with self.build.clock("book_encoding"):
                book.feed(wav)

    def finish(
        self,
        streams: list[BookEncoder],
        feeding: list[Future[None]],
        in_book: list[ChapterAudio],
        chapters: list[ChapterAudio],
        planned: list[PlannedFile],
    ) -> None:
        """Every chapter is made: the whole-book files that are out of date after all are finished or joined."""
        setting = self.setting
        books = {f.kind.name: f for f in planned if f.chapter is None}
        for book, fed in zip(streams, feeding, strict=True):
            fed.result()
            if is_stale(books[book.kind.name], setting.before, setting.out_dir):
                self.finish_book(books[book.kind.name], book, in_book)
            else:
                book.abort()  # made while synthesis ran, and the same as the one on disk after all
        self.build.wait_for_encodes()
        for kind in setting.segmented:
            if is_stale(books[kind.name], setting.before, setting.out_dir):
                paths = [self.build.store.path(fp, kind) for fp in books[kind.name].segments]
                self.join(books[kind.name], paths, chapters)

    def finish_book(self, f: PlannedFile, book: BookEncoder, in_book: list[ChapterAudio]) -> None:
        setting, job = self.setting, self.setting.job
        tags = book_tags(book.kind, setting.title, setting.author, job.narrator, job.year, job.description)
        with self.build.clock("book_encoding"):
            book.finish(in_book, tags, self.setting.cover_file)
        self.build.files.done(f)

    def join(self, f: PlannedFile, paths: list[Path], chapters: list[ChapterAudio]) -> None:
        """A book file remuxed from its chapters' segments, with markers, tags and cover; or the read-along book
        packed from them, with the text."""
        setting = self.setting
        if f.kind.read_along:
            with self.build.clock("remux"):
                write_read_along(self.planner.script, f.path, paths, chapters)
            self.build.files.done(f)
            return
        job, rate = setting.job, setting.rate
        spans = [round(c.samples * rate / c.rate) for c in chapters]  # as mastering resamples them
        segments = [Segment(p, c.title, n) for p, c, n in zip(paths, chapters, spans, strict=True)]
        tags = book_tags(f.kind, setting.title, setting.author, job.narrator, job.year, job.description)
        with self.build.clock("remux"):
            join_segments(
                segments,
                f.path,
                kind=f.kind,
                rate=rate,
                tags=tags,
                cover_file=setting.cover_file,
                work_dir=setting.work_dir,
            )
        self.build.files.done(f)

    def check(self, chapters: list[ChapterAudio], timings: dict[str, float]) -> list[QaFile]:
        """Every encoded file measured against the preset, after encoding. An encoder may overshoot the limiter's
        ceiling (MP3 and AAC by up to 1.3 dB on speech, measured): a file over its peak rule is made again with
        that much more headroom, twice at most, before the run reports; what still fails, QA says."""
        preset = self.setting.preset
        # the read-along book's audio is the M4B's, encoded alike: its zip is not measured
        files = list({f.path: f for f in self.build.files.made if not f.kind.read_along}.values())
        if preset is None or not files:
            return []
        started = time.monotonic()
        headroom = self.build.headroom
        qa = self._measured(files, preset)
        for _ in range(2):
            over = {f: dB for f, q in qa.items() if (dB := _overshoot(q, preset)) > 0}
            for f, dB in over.items():
                headroom[f.path] = headroom.get(f.path, 0.0) + dB + 0.3
                self.make_again(f, chapters, preset)
            qa.update(self._measured(list(over), preset))
        timings["qa"] = time.monotonic() - started
        return list(qa.values())

    def _measured(self, files: list[PlannedFile], preset: Preset) -> dict[PlannedFile, QaFile]:
        """Each file's QA: a chapter file's as measured when it was made, the others' now."""
        checked = self.build.checked
        done = {f: checked.pop(f.path) for f in files if f.path in checked}
        rest = [f for f in files if f not in done]
        return done | dict(zip(rest, _measure(rest, preset), strict=True))

    def make_again(self, f: PlannedFile, chapters: list[ChapterAudio], preset: Preset) -> None:
        """A file made again with the headroom QA found it needs."""
        if f.chapter is not None:
            self.build.encode_chapter(f, chapters[f.chapter])
            return
        setting, headroom = self.setting, self.build.headroom[f.path]
        if f.kind.segmented:  # every segment made again with the headroom (kept in the scratch space only)

            def segment(c: ChapterAudio) -> Path:
                dest = setting.work_dir / f"segment-{c.index}-{headroom:.2f}.aac"
                return self.build.encode_segment(f.kind, "", master_to_wav(c, preset, headroom), dest)

            with ThreadPoolExecutor(max_workers=os.cpu_count() or 1) as pool:
                self.join(f, list(pool.map(segment, chapters)), chapters)
            return
        bitrate = bitrate_for(setting.job, f.kind)
        book = BookEncoder(f.path, kind=f.kind, rate=setting.rate, bitrate=bitrate, work_dir=setting.work_dir)
        try:
            mastered = [master_to_wav(c, preset, headroom) for c in chapters]
            for chapter in mastered:
                book.feed(chapter.wav)
        except BaseException:
            book.abort()
            raise
        self.finish_book(f, book, mastered)


def _measure(files: list[PlannedFile], preset: Preset) -> list[QaFile]:
    with ThreadPoolExecutor(max_workers=os.cpu_count() or 1) as pool:
        return list(pool.map(lambda f: check_file(f.path, preset), files))


def _overshoot(qa: QaFile, preset: Preset) -> float:
    """dB by which a file's peak passes the preset's rule (0 when it holds)."""
    peak = qa.peak_dbfs if qa.peak_dbfs is not None else qa.true_peak_dbtp
    return max(0.0, peak - preset.max_peak) if peak is not None else 0.0
