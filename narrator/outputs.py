"""From takes to files: assemble each chapter, master it, encode it, write subtitles, check the result.

Incremental: every output file has a fingerprint of everything that shapes it (its takes, pauses,
mastering, tags, cover). When every file is there with the fingerprint of the last run, nothing is
assembled or encoded again; otherwise only the files whose fingerprint changed are encoded.
"""

from __future__ import annotations

import bisect
import contextlib
import hashlib
import itertools
import json
import math
import os
import shutil
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from . import errors, ffmpeg
from .assemble import ChapterAudio, assemble_chapter, gap_seconds
from .audio import Audio
from .chunker import Chunk
from .mastering import PRESETS, LoudnessMeter, Preset, check_file, gain_for, master_chapter, mastering_filters
from .subtitles import chapter_cues, write_subtitles
from .writers import (
    BOOK_CODECS,
    CHAPTER_CODECS,
    BookEncoder,
    book_tags,
    safe_filename,
    write_chapter,
    write_cover,
)

if TYPE_CHECKING:
    from .pipeline import Prepared
    from .spec import Job, PauseSpec

FORMAT_VERSION = 1  # bump when the way files are made changes, so old outputs are rebuilt
CUE_VERSION = 2  # the same for subtitles alone (2: sentences placed at pauses), so audio is not encoded again
ENCODED = (".mp3", ".m4b", ".opus")


@dataclass(frozen=True)
class Part:
    """One file of a chapter too long for output.max_file_minutes: the chapter's chunks ``first`` to ``end``
    (positions in the chapter, end excluded), cut at block boundaries, with the chapter's opening and closing
    pauses at its edges."""

    number: int  # from 1
    of: int
    first: int
    end: int

    @property
    def label(self) -> str:
        """What follows the chapter's title in the part's file name and title tag."""
        return f", part {self.number} of {self.of}"


@dataclass(frozen=True)
class PlannedFile:
    path: Path
    chapter: int | None  # index, or None for a whole-book file
    fingerprint: str
    part: Part | None = None  # a chapter file that holds only part of its chapter
    track: tuple[int, int] = (0, 0)  # chapter files: number and count among the files of their kind


@dataclass
class BuildResult:
    outputs: list[Path]
    chapters: list[dict[str, Any]]  # number, title, start, duration
    placements: dict[str, dict[str, Any]]  # chunk id -> offset, duration, flags
    fingerprints: dict[str, str]  # output path relative to the output folder -> fingerprint
    qa: list[dict[str, Any]] = field(default_factory=list)
    reused: bool = False
    stage_seconds: dict[str, float] = field(default_factory=dict)  # busy time per stage, summed over threads


def _bitrate(job: Job, kind: str) -> str:
    """A preset may demand its own MP3 bitrate (ACX: 192k); everything else takes the job's."""
    preset = PRESETS[job.output.mastering]
    return (preset.mp3_bitrate if preset and kind == "mp3" else None) or job.output.bitrate


def _hash(*parts: object) -> str:
    return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode("utf-8")).hexdigest()[:20]


def plan_parts(lengths: Sequence[float], gaps: Sequence[float], block_starts: Sequence[bool], head: float,
               tail: float, limit: float) -> list[tuple[int, int]]:  # fmt: skip
    """Cut a chapter of chunks (each ``lengths[i]`` seconds after a pause of ``gaps[i]``) into parts of at most
    ``limit`` seconds, each with ``head`` and ``tail`` seconds of pause at its edges: (first, end) positions.
    Parts are about equal in length and start at a block (a paragraph or heading) when one is near enough."""
    sums = list(itertools.accumulate((g + n for g, n in zip(gaps, lengths, strict=True)), initial=0.0))

    def length(first: int, end: int) -> float:  # the first chunk's gap is replaced by the head
        return head + sums[end] - sums[first] - gaps[first] + tail

    parts: list[tuple[int, int]] = []
    first, count = 0, len(lengths)
    while first < count - 1 and length(first, count) > limit:
        target = length(first, count) / math.ceil(length(first, count) / limit)
        # length() grows with ``end``: the ends that fit are those up to the first one that does not
        fits = range(first + 1, min(count, bisect.bisect_right(sums, limit - head - tail + sums[first] + gaps[first])))
        at_blocks = [end for end in fits if block_starts[end] and length(first, end) >= target / 2]
        end = min(at_blocks or fits, key=lambda e: abs(length(first, e) - target)) if fits else first + 1
        parts.append((first, end))
        first = end
    return [*parts, (first, count)]


def _chapter_parts(prepared: Prepared, chunks: list[Chunk]) -> list[Part | None]:
    """How the chapter's files are cut (output.max_file_minutes): [None] when one file holds it all. Take
    lengths come from their headers before any trimming, so no part can come out longer than the limit."""
    limit = prepared.job.output.max_file_minutes
    if limit is None:
        return [None]
    pauses = prepared.job.pauses
    lengths = []
    for chunk in chunks:
        layout = prepared.cache.layout(prepared.keys[chunk.id])
        if layout is None:
            raise errors.ToolError(f"take for chunk {chunk.id} vanished from the cache during the run")
        lengths.append(layout.duration)
    gaps = [gap_seconds(c, pauses) for c in chunks]
    cuts = plan_parts(lengths, gaps, [c.piece == 0 for c in chunks], pauses.chapter_start, pauses.chapter_end,
                      limit * 60)  # fmt: skip
    if len(cuts) == 1:
        return [None]
    return [Part(n, len(cuts), first, end) for n, (first, end) in enumerate(cuts, 1)]


def plan_files(prepared: Prepared) -> list[PlannedFile]:
    job, doc = prepared.job, prepared.document
    out_dir = job.output.dir
    formats = job.output.formats
    cover = hashlib.sha256(doc.cover.data).hexdigest()[:16] if doc.cover else None
    by_chapter = _chunks_by_chapter(prepared)
    width = max(2, len(str(len(prepared.chapters))))
    kinds = [kind for kind in CHAPTER_CODECS if kind in formats]
    parts = {i: _chapter_parts(prepared, by_chapter[i]) if kinds else [None] for i in by_chapter}
    tracks = sum(len(p) for p in parts.values())
    track = 0
    files: list[PlannedFile] = []
    chapter_prints = []
    for index, chapter in enumerate(prepared.chapters):
        keys = [prepared.keys[c.id] for c in by_chapter[index]]
        sound = _hash(FORMAT_VERSION, keys, prepared.job.pauses.__dict__, job.output.mastering)
        chapter_prints.append(sound)
        # "chapters/01 Title": a chapter's MP3 and subtitles share it (titles may hold dots: no with_suffix)
        stem = out_dir / "chapters" / f"{index + 1:0{width}d} {safe_filename(chapter.title)}"
        for part in parts[index]:
            track += 1
            name = stem.name + (part.label if part else "")
            for kind in kinds:
                tags = [chapter.title, doc.title, doc.author, track, tracks, cover, _bitrate(job, kind), part]
                path = stem.with_name(f"{name}.{kind}")
                files.append(PlannedFile(path, index, _hash(sound, tags), part, (track, tracks)))
        for fmt in ("srt", "vtt"):
            if fmt in formats:
                files.append(PlannedFile(stem.with_name(f"{stem.name}.{fmt}"), index, _hash(sound, fmt, CUE_VERSION)))
    book_files: list[PlannedFile] = []  # listed first: the book is what a user looks for
    book = out_dir / safe_filename(doc.title)
    book_tags = [[c.title for c in prepared.chapters], doc.title, doc.author, job.narrator, job.year, job.description]
    if "m4b" in formats:
        fingerprint = _hash(chapter_prints, book_tags, cover, job.output.bitrate)
        book_files.append(PlannedFile(book.with_name(f"{book.name}.m4b"), None, fingerprint))
    if "mp3-book" in formats:
        fingerprint = _hash(chapter_prints, book_tags, cover, _bitrate(job, "mp3"), "mp3-book")
        book_files.append(PlannedFile(book.with_name(f"{book.name}.mp3"), None, fingerprint))
    for fmt in ("srt", "vtt"):
        if fmt in formats:
            book_files.append(
                PlannedFile(book.with_name(f"{book.name}.{fmt}"), None, _hash(chapter_prints, fmt, CUE_VERSION))
            )
    return book_files + files


def build_outputs(prepared: Prepared, previous: dict[str, Any] | None, timings: dict[str, float]) -> BuildResult:
    out_dir = prepared.job.output.dir
    planned = plan_files(prepared)
    before = (previous or {}).get("fingerprints", {})
    fingerprints: dict[str, str] = {}
    stale: list[PlannedFile] = []
    for f in planned:
        relative = os.path.relpath(f.path, out_dir)
        fingerprints[relative] = f.fingerprint
        if not f.path.exists() or before.get(relative) != f.fingerprint:
            stale.append(f)
    if previous and not stale:
        return _reuse(previous, planned, fingerprints)
    result = _build(prepared, planned, stale, timings)
    result.fingerprints = fingerprints
    unchanged_qa = [q for q in (previous or {}).get("qa", []) if q["file"] not in {f.path.name for f in stale}]
    result.qa = sorted(unchanged_qa + result.qa, key=lambda q: [f.path.name for f in planned].index(q["file"]))
    return result


def _reuse(previous: dict[str, Any], planned: list[PlannedFile], fingerprints: dict[str, str]) -> BuildResult:
    placements = {
        c["id"]: {"offset": c["offset"], "duration": c["duration"], "flags": c.get("flags", [])}
        for c in previous["chunks"]
        if "offset" in c
    }
    return BuildResult(
        outputs=[f.path for f in planned],
        chapters=previous["chapters"],
        placements=placements,
        fingerprints=fingerprints,
        qa=previous.get("qa", []),
        reused=True,
    )


class StageClock:
    """Busy seconds per stage, summed over the threads that ran it (stages overlap, so these add up to more
    than the wall time)."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = {}
        self._lock = threading.Lock()

    @contextlib.contextmanager
    def __call__(self, stage: str) -> Iterator[None]:
        start = time.monotonic()
        try:
            yield
        finally:
            with self._lock:
                self.seconds[stage] = self.seconds.get(stage, 0.0) + time.monotonic() - start


def _build(
    prepared: Prepared, planned: list[PlannedFile], stale: list[PlannedFile], timings: dict[str, float]
) -> BuildResult:
    """One pipeline, on every core: each chapter is assembled and mastered as a task; a whole-book encoder is fed
    each chapter as soon as it is ready (in order), and each chapter's own files are encoded as tasks queued
    behind the chapters, so the book's single-threaded encoder never waits for long."""
    job, doc = prepared.job, prepared.document
    work_dir = job.output.dir / ".work"
    shutil.rmtree(work_dir, ignore_errors=True)
    work_dir.mkdir(parents=True)
    started = time.monotonic()
    clock = StageClock()
    preset = PRESETS[job.output.mastering]
    if not any(f.path.suffix in ENCODED for f in stale):
        preset = None  # only subtitles to write: the takes' placements are all they need
    first = prepared.cache.layout(prepared.keys[prepared.chunks[0].id])
    if first is None:
        raise errors.ToolError("the first take vanished from the cache during the run")
    rate = (preset.sample_rate if preset else None) or first.rate
    by_chapter = _chunks_by_chapter(prepared)
    cover_file = write_cover(doc.cover, work_dir)

    book_files = [f for f in stale if f.chapter is None and f.path.suffix[1:] in BOOK_CODECS]
    chapter_files = [f for f in stale if f.chapter is not None and f.path.suffix[1:] in CHAPTER_CODECS]

    def make_chapter(index: int) -> tuple[ChapterAudio, ChapterAudio]:
        """(the chapter as assembled, carrying its mastering for the chapter files' encoders to apply; the
        chapter as the book encoders read it, mastered). Chapter files do not wait for the mastered WAV."""
        if preset is None:
            with clock("assembly"):
                chapter = _assemble(prepared, index, by_chapter[index], first.rate, work_dir)
            return chapter, chapter
        with clock("assembly"):  # the meter is not niced: the chapter is not ready until it has measured
            meter = LoudnessMeter(preset, first.rate, f"chapter {index + 1}")
            try:
                chapter = _assemble(prepared, index, by_chapter[index], first.rate, work_dir, meter.write)
            except BaseException:
                meter.abort()
                raise
            chapter = replace(chapter, gain=gain_for(preset, meter.result()))
        if not book_files:
            return chapter, chapter
        with ffmpeg.background(), clock("mastering"):
            return chapter, _master(chapter, preset)

    def encode_chapter(f: PlannedFile, chapter: ChapterAudio) -> None:
        kind = f.path.suffix[1:]
        title = chapter.title + (f.part.label if f.part else "")
        filters = mastering_filters(preset, chapter.gain or 0.0, _part_prelude(chapter, f.part, job.pauses))
        with ffmpeg.background(), clock("encoding"):
            write_chapter(chapter.wav, f.path, filters=filters, kind=kind, title=title, album=doc.title,
                          artist=doc.author, track=f.track[0], total=f.track[1], cover_file=cover_file,
                          bitrate=_bitrate(job, kind))  # fmt: skip

    books: list[BookEncoder] = []
    with (
        ThreadPoolExecutor(max_workers=os.cpu_count() or 1) as pool,
        ThreadPoolExecutor(len(book_files) or 1) as feeders,
    ):
        made = [pool.submit(make_chapter, i) for i in range(len(prepared.chapters))]
        try:
            for f in book_files:
                kind = f.path.suffix[1:]
                books.append(BookEncoder(f.path, kind=kind, rate=rate, bitrate=_bitrate(job, kind), work_dir=work_dir))

            def feed(book: BookEncoder) -> None:
                for future in made:
                    wav = future.result()[1].wav
                    with clock("encoding"):
                        book.feed(wav)

            feeding = [feeders.submit(feed, book) for book in books]
            chapters: list[ChapterAudio] = []  # as assembled: placements, durations
            in_book: list[ChapterAudio] = []  # as the book encoders read them: their lengths place the markers
            encodes = []
            for future in made:
                chapter, mastered = future.result()
                chapters.append(chapter)
                in_book.append(mastered)
                encodes += [
                    pool.submit(encode_chapter, f, chapter) for f in chapter_files if f.chapter == chapter.index
                ]
            _write_all_subtitles(prepared, chapters, planned)
            for book, fed in zip(books, feeding, strict=True):
                fed.result()
                tags = book_tags(book.kind, doc.title, doc.author, job.narrator, job.year, job.description)
                with clock("encoding"):
                    book.finish(in_book, tags, cover_file)
            for encode in encodes:
                encode.result()
        except BaseException:
            for future in made:
                future.cancel()
            for book in books:
                book.abort()
            raise
    timings["outputs"] = time.monotonic() - started
    shutil.rmtree(work_dir, ignore_errors=True)

    qa: list[dict[str, Any]] = []
    checked = [f.path for f in stale if f.path.suffix in ENCODED]
    if preset is not None and checked:
        t0 = time.monotonic()
        with ThreadPoolExecutor(max_workers=os.cpu_count() or 1) as pool:
            qa = list(pool.map(lambda path: check_file(path, preset), checked))
        timings["qa"] = time.monotonic() - t0

    placements = {
        p.chunk_id: {"offset": round(p.offset, 4), "duration": round(p.duration, 4), "flags": list(p.flags)}
        for c in chapters
        for p in c.placements
    }
    rows, start = [], 0.0
    for chapter in chapters:
        row = {"number": chapter.index + 1, "title": chapter.title, "start": round(start, 4),
               "duration": round(chapter.duration, 4)}  # fmt: skip
        # where each file of a split chapter begins and ends on the chapter's timeline (planned in order)
        parts = {f.part: f.path.stem for f in planned if f.chapter == chapter.index and f.part is not None}
        if parts:
            row["parts"] = [_part_row(chapter, part, name) for part, name in parts.items()]
        rows.append(row)
        start += chapter.duration
    return BuildResult([f.path for f in planned], rows, placements, {}, qa, stage_seconds=clock.seconds)


def _write_all_subtitles(prepared: Prepared, chapters: list[ChapterAudio], planned: list[PlannedFile]) -> None:
    """Cheap, so always written from this run's placements: per chapter, and for the book on the M4B's
    timeline."""
    formats = [fmt for fmt in ("srt", "vtt") if fmt in prepared.job.output.formats]
    if not formats:
        return
    stems = {f.chapter: f.path.with_suffix("") for f in planned if f.path.suffix in (".srt", ".vtt")}
    by_chapter = _chunks_by_chapter(prepared)
    book_cues = []
    offset = 0.0
    for chapter in chapters:
        write_subtitles(chapter_cues(chapter, by_chapter[chapter.index]), stems[chapter.index], formats)
        book_cues += chapter_cues(chapter, by_chapter[chapter.index], offset)
        offset += chapter.duration
    write_subtitles(book_cues, stems[None], formats)


def _chunks_by_chapter(prepared: Prepared) -> dict[int, list[Chunk]]:
    by_chapter: dict[int, list[Chunk]] = {i: [] for i in range(len(prepared.chapters))}
    for chunk in prepared.chunks:
        by_chapter[chunk.chapter].append(chunk)
    return by_chapter


def _assemble(
    prepared: Prepared,
    index: int,
    chunks: list[Chunk],
    rate: int,
    work_dir: Path,
    tap: Callable[[bytes], None] | None = None,
) -> ChapterAudio:
    def load_take(chunk: Chunk) -> Audio:
        audio = prepared.cache.get(prepared.keys[chunk.id])
        if audio is None:
            raise errors.ToolError(f"take for chunk {chunk.id} vanished from the cache during the run")
        return audio

    def estimate(chunk: Chunk) -> float:
        return prepared.provider.estimate_seconds(chunk.spoken)

    title = prepared.chapters[index].title
    wav = work_dir / f"chapter-{index + 1:04d}.wav"
    return assemble_chapter(index, title, chunks, load_take, prepared.job.pauses, rate, wav, estimate, tap)


def _master(chapter: ChapterAudio, preset: Preset) -> ChapterAudio:
    """The chapter at the preset's target, as a WAV of its own; its duration unchanged (resampled at most)."""
    assert chapter.gain is not None
    mastered = chapter.wav.with_name(f"{chapter.wav.stem}-mastered.wav")
    master_chapter(chapter.wav, mastered, mastering_filters(preset, chapter.gain))
    rate = preset.sample_rate or chapter.rate
    return replace(chapter, wav=mastered, rate=rate, samples=round(chapter.samples * rate / chapter.rate), gain=None)


def _part_span(chapter: ChapterAudio, part: Part) -> tuple[int, int]:
    """Where a part's sound begins and ends in its chapter's WAV, in samples: from its first take's first
    sound to its last take's last, or the chapter's own edges where the part has them."""
    rate, placed = chapter.rate, chapter.placements
    start = 0 if part.first == 0 else round(placed[part.first].offset * rate)
    last = placed[part.end - 1]
    end = chapter.samples if part.end == len(placed) else round((last.offset + last.duration) * rate)
    return start, end


def _part_row(chapter: ChapterAudio, part: Part, name: str) -> dict[str, Any]:
    start, end = _part_span(chapter, part)
    return {"name": name, "first_chunk": chapter.placements[part.first].chunk_id,
            "start": round(start / chapter.rate, 4), "end": round(end / chapter.rate, 4)}  # fmt: skip


def _part_prelude(chapter: ChapterAudio, part: Part | None, pauses: PauseSpec) -> str | None:
    """ffmpeg filters that cut a part out of its chapter's WAV, sample-exact, and add the chapter's opening
    and closing pauses where it was cut."""
    if part is None:
        return None
    start, end = _part_span(chapter, part)
    chain = [f"atrim=start_sample={start}:end_sample={end}", "asetpts=N/SR/TB"]
    if part.first > 0:
        chain.append(f"adelay=delays={round(pauses.chapter_start * chapter.rate)}S:all=1")
    if part.end < len(chapter.placements):
        chain.append(f"apad=pad_len={round(pauses.chapter_end * chapter.rate)}")
    return ",".join(chain)


def remove_stale_outputs(out_dir: Path, current: set[Path]) -> None:
    """Chapter files from an earlier run whose chapter was renamed or removed."""
    chapters_dir = out_dir / "chapters"
    if chapters_dir.is_dir():
        for path in chapters_dir.iterdir():
            if path.suffix in (".mp3", ".opus", ".srt", ".vtt") and path not in current:
                path.unlink()
