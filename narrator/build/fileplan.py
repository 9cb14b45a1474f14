"""Which files a build makes, each with a fingerprint of everything that shapes it (its takes, pauses, mastering,
tags, cover): a file whose fingerprint is the one the last build recorded, and that is still on disk, is not made
again. Chapters are planned one at a time, so a chapter can be built while later ones are still synthesized."""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path

from ..core import errors
from ..core.outputkinds import OUTPUT_KINDS, OutputKind
from ..core.presets import PRESETS
from ..job.spec import Job
from ..synthesis.script import Script
from ..text.chunker import Chunk
from .assemble import gap_seconds
from .parts import Part, plan_parts
from .writers import safe_filename

FORMAT_VERSION = 2  # bump when the way files are made changes, so old outputs are rebuilt (2: chapters framed)
SEGMENT_VERSION = 1  # the same for the M4B's per-chapter segments (segments.py)
JOIN_VERSION = 2  # the same for the join of segments into a book (2: one timed stream; 1 overstated the length)
CUE_VERSION = (
    3  # the same for subtitles alone (2: sentences placed at pauses; 3: all together), so audio is not encoded again
)
READ_ALONG_VERSION = 2  # the same for the read-along book's pages and overlays (readalong/; 2: seams placed together)


@dataclass(frozen=True)
class PlannedFile:
    path: Path
    kind: OutputKind
    chapter: int | None  # index, or None for a whole-book file
    fingerprint: str
    part: Part | None = None  # a chapter file that holds only part of its chapter
    track: tuple[int, int] = (0, 0)  # chapter files: number and count among the files of their kind
    segments: tuple[str, ...] = ()  # a book file joined from segments: each chapter's segment's fingerprint


def bitrate_for(job: Job, kind: OutputKind) -> str:
    """A preset may demand its own MP3 bitrate (ACX: 192k); everything else takes the job's."""
    preset = PRESETS[job.output.mastering]
    return (preset.mp3_bitrate if preset and kind.preset_bitrate else None) or job.output.bitrate


def _hash(*parts: object) -> str:
    return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode("utf-8")).hexdigest()[:20]


def _chapter_parts(script: Script, chunks: list[Chunk]) -> list[Part | None]:
    """How the chapter's files are cut (output.max_file_minutes): [None] when one file holds it all. A take's
    length is its audio before any trimming, plus the job's pause at each paragraph seam inside it (assembly sets
    a seam's silence to that pause, which may be longer than the voice's own), so no part can come out longer
    than the limit."""
    limit = script.job.output.max_file_minutes
    if limit is None:
        return [None]
    pauses = script.job.pauses
    # cut only between takes: assembly sets a pause from the job there, while inside a grouped take a paragraph
    # seam may run on uncut; a take's length is its whole audio, shared by its chunks
    starts = [i for i, c in enumerate(chunks) if i == 0 or script.take_of[c.id] is not script.take_of[chunks[i - 1].id]]
    lengths = []
    for i in starts:
        layout = script.cache.layout(script.keys[chunks[i].id])
        if layout is None:
            raise errors.TakeVanished(chunks[i].id)
        inside = script.take_of[chunks[i].id].chunks[1:]
        lengths.append(layout.duration + sum(gap_seconds(c, pauses) for c in inside))
    gaps = [gap_seconds(chunks[i], pauses) for i in starts]
    cut_takes = plan_parts(
        lengths, gaps, [chunks[i].piece == 0 for i in starts], pauses.chapter_start, pauses.chapter_end, limit * 60
    )
    bounds = [*starts, len(chunks)]
    cuts = [(bounds[first], bounds[end]) for first, end in cut_takes]
    if len(cuts) == 1:
        return [None]
    return [Part(n, len(cuts), first, end) for n, (first, end) in enumerate(cuts, 1)]


def _audio_hash(script: Script, chunk: Chunk) -> str:
    digest = script.cache.audio_hash(script.keys[chunk.id])
    if digest is None:
        raise errors.TakeVanished(chunk.id)
    return digest


@dataclass(frozen=True)
class ChapterPlan:
    index: int
    sound: str  # fingerprint of the chapter's sound: its takes' audio, pauses, mastering
    files: list[PlannedFile]  # the chapter's own files, parts and kinds in order
    segments: dict[str, str]  # book kind -> fingerprint of this chapter's segment of it (segments.py)


class FilePlanner:
    """The files the job's formats ask for, each with a fingerprint: chapter by chapter (a chapter is planned as
    soon as its takes are stored, while later ones are still being synthesized), then the book."""

    def __init__(self, script: Script):
        self.script = script
        job, doc = script.job, script.document
        self.kinds = [kind for kind in OUTPUT_KINDS.values() if kind.name in job.output.formats]
        self.cover = hashlib.sha256(doc.cover.data).hexdigest()[:16] if doc.cover else None
        self.audio_kinds = [k for k in self.kinds if k.per_chapter and k.audio]
        self.framed = any(k.segmented for k in self.kinds)  # chapters in whole AAC frames (assemble.Framing)
        self._parts: dict[int, list[Part | None]] = {}
        self._chapters: dict[int, ChapterPlan] = {}  # planned once: a chapter's takes do not change in a build

    @property
    def needs_every_chapter(self) -> bool:
        """Chapters cut into parts number their files across the book: every chapter's takes are needed first."""
        return bool(self.audio_kinds) and self.script.job.output.max_file_minutes is not None

    def parts(self, index: int) -> list[Part | None]:
        if index not in self._parts:
            split = self.audio_kinds and self.script.job.output.max_file_minutes is not None
            self._parts[index] = _chapter_parts(self.script, self.script.by_chapter[index]) if split else [None]
        return self._parts[index]

    def chapter(self, index: int) -> ChapterPlan:
        if index not in self._chapters:
            self._chapters[index] = self._plan_chapter(index)
        return self._chapters[index]

    def _plan_chapter(self, index: int) -> ChapterPlan:
        script, job, doc = self.script, self.script.job, self.script.document
        chapter = script.chapters[index]
        # the takes' content, not their cache keys: a take made again for the same text reaches every file
        takes = [_audio_hash(script, c) for c in script.by_chapter[index]]
        sound = _hash(FORMAT_VERSION, takes, job.pauses.model_dump(), job.output.mastering, self.framed)
        stem = self.stem(index)
        track = sum(len(self.parts(i)) for i in range(index))
        tracks = sum(len(self.parts(i)) for i in range(len(script.chapters)))
        files: list[PlannedFile] = []
        for part in self.parts(index):
            track += 1
            name = stem.name + (part.label if part else "")
            for kind in self.audio_kinds:
                tags = [chapter.title, doc.title, doc.author, track, tracks, self.cover, bitrate_for(job, kind), part]
                path = stem.with_name(name + kind.suffix)
                files.append(PlannedFile(path, kind, index, _hash(sound, tags), part, (track, tracks)))
        for kind in (k for k in self.kinds if k.per_chapter and not k.audio):
            path = stem.with_name(stem.name + kind.suffix)
            files.append(PlannedFile(path, kind, index, _hash(sound, kind.name, CUE_VERSION)))
        # a segment holds a chapter's sound, encoded; the first one keeps its opening frame (segments.py)
        segments = {
            k.name: _hash(SEGMENT_VERSION, sound, k.name, bitrate_for(job, k), index == 0)
            for k in self.book_kinds
            if k.segmented
        }
        return ChapterPlan(index, sound, files, segments)

    def stem(self, index: int) -> Path:
        """ "chapters/01 Title": a chapter's MP3 and subtitles share it (titles may hold dots: no with_suffix)."""
        chapters = self.script.chapters
        width = max(2, len(str(len(chapters))))
        return self.script.job.output.dir / "chapters" / f"{index + 1:0{width}d} {safe_filename(chapters[index].title)}"

    @property
    def book_kinds(self) -> list[OutputKind]:
        return [k for k in self.kinds if k.per_book]

    def book_path(self, kind: OutputKind) -> Path:
        return self.script.job.output.dir / (safe_filename(self.script.document.title) + kind.suffix)

    def _printed_text(self) -> str:
        script = self.script
        printed = [[c.title, [(b.kind, b.level, b.shown or b.text) for b in c.blocks]] for c in script.chapters]
        sources = [hashlib.sha256(s.path.read_bytes()).hexdigest() for s in script.job.sources if s.format == "epub"]
        return _hash(printed, script.document.language, sources)

    def book(self, chapters: list[ChapterPlan]) -> list[PlannedFile]:
        job, doc = self.script.job, self.script.document
        book_tags = [
            [c.title for c in self.script.chapters],
            doc.title,
            doc.author,
            job.narrator,
            job.year,
            job.description,
        ]
        prints = [c.sound for c in chapters]
        files = []
        for kind in self.book_kinds:
            shape: list[object] = [book_tags, self.cover, bitrate_for(job, kind)] if kind.audio else [CUE_VERSION]
            if kind.segmented:
                shape.append(JOIN_VERSION)
            if kind.read_along:  # its pages: the text as printed, and an EPUB source's own files
                shape += [READ_ALONG_VERSION, self._printed_text(), job.narrator]
            segments = tuple(c.segments[kind.name] for c in chapters) if kind.segmented else ()
            fingerprint = _hash(prints, kind.name, *shape)
            files.append(PlannedFile(self.book_path(kind), kind, None, fingerprint, segments=segments))
        return files


def plan_files(script: Script, planner: FilePlanner | None = None) -> list[PlannedFile]:
    """Every file the job's formats ask for, with its fingerprint: the book's files first (the book is what a
    user looks for), then each chapter's, in the order of the kinds table."""
    planner = planner or FilePlanner(script)
    chapters = [planner.chapter(i) for i in range(len(script.chapters))]
    return planner.book(chapters) + [f for c in chapters for f in c.files]


def is_stale(f: PlannedFile, before: dict[str, str], out_dir: Path) -> bool:
    """Not on disk, or made from something else than it would be now."""
    return not f.path.exists() or before.get(os.path.relpath(f.path, out_dir)) != f.fingerprint
