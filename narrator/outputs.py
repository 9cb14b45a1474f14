"""Which files a build makes, and which of them are out of date.

Incremental: every output file has a fingerprint of everything that shapes it (its takes, pauses, mastering,
tags, cover). When every file is there with the fingerprint of the last run, nothing is assembled or encoded
again; otherwise only the files whose fingerprint changed are made again (build.py makes them).
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

from . import errors
from .assemble import gap_seconds
from .build import BuildResult, FileProgress, PlannedFile, bitrate_for, build_files
from .chunker import Chunk
from .outputkinds import OUTPUT_KINDS
from .parts import Part, plan_parts
from .records import Manifest, Placement
from .script import Script
from .writers import safe_filename

FORMAT_VERSION = 2  # bump when the way files are made changes, so old outputs are rebuilt (2: chapters framed)
SEGMENT_VERSION = 1  # the same for the M4B's per-chapter segments (segments.py)
CUE_VERSION = 2  # the same for subtitles alone (2: sentences placed at pauses), so audio is not encoded again


def _hash(*parts: object) -> str:
    return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode("utf-8")).hexdigest()[:20]


def _chapter_parts(script: Script, chunks: list[Chunk]) -> list[Part | None]:
    """How the chapter's files are cut (output.max_file_minutes): [None] when one file holds it all. Take
    lengths come from their headers before any trimming, so no part can come out longer than the limit."""
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
            raise errors.ToolError(f"take for chunk {chunks[i].id} vanished from the cache during the run")
        lengths.append(layout.duration)
    gaps = [gap_seconds(chunks[i], pauses) for i in starts]
    cut_takes = plan_parts(lengths, gaps, [chunks[i].piece == 0 for i in starts], pauses.chapter_start,
                           pauses.chapter_end, limit * 60)  # fmt: skip
    bounds = [*starts, len(chunks)]
    cuts = [(bounds[first], bounds[end]) for first, end in cut_takes]
    if len(cuts) == 1:
        return [None]
    return [Part(n, len(cuts), first, end) for n, (first, end) in enumerate(cuts, 1)]


def _audio_hash(script: Script, chunk: Chunk) -> str:
    digest = script.cache.audio_hash(script.keys[chunk.id])
    if digest is None:
        raise errors.ToolError(f"take for chunk {chunk.id} vanished from the cache during the run")
    return digest


def plan_files(script: Script) -> list[PlannedFile]:
    """Every file the job's formats ask for, with its fingerprint: the book's files first (the book is what a
    user looks for), then each chapter's, in the order of the kinds table."""
    job, doc = script.job, script.document
    kinds = [kind for kind in OUTPUT_KINDS.values() if kind.name in job.output.formats]
    cover = hashlib.sha256(doc.cover.data).hexdigest()[:16] if doc.cover else None
    width = max(2, len(str(len(script.chapters))))
    audio_kinds = [k for k in kinds if k.per_chapter and k.audio]
    framed = any(k.segmented for k in kinds)  # chapter lengths in whole AAC frames (assemble.Framing)
    parts = {i: _chapter_parts(script, script.by_chapter[i]) if audio_kinds else [None] for i in script.by_chapter}
    tracks = sum(len(p) for p in parts.values())
    track = 0
    files: list[PlannedFile] = []
    chapter_prints = []
    for index, chapter in enumerate(script.chapters):
        # the takes' content, not their cache keys: a take made again for the same text reaches every file
        takes = [_audio_hash(script, c) for c in script.by_chapter[index]]
        sound = _hash(FORMAT_VERSION, takes, job.pauses.model_dump(), job.output.mastering, framed)
        chapter_prints.append(sound)
        # "chapters/01 Title": a chapter's MP3 and subtitles share it (titles may hold dots: no with_suffix)
        stem = job.output.dir / "chapters" / f"{index + 1:0{width}d} {safe_filename(chapter.title)}"
        for part in parts[index]:
            track += 1
            name = stem.name + (part.label if part else "")
            for kind in audio_kinds:
                tags = [chapter.title, doc.title, doc.author, track, tracks, cover, bitrate_for(job, kind), part]
                path = stem.with_name(name + kind.suffix)
                files.append(PlannedFile(path, kind, index, _hash(sound, tags), part, (track, tracks)))
        for kind in (k for k in kinds if k.per_chapter and not k.audio):
            path = stem.with_name(stem.name + kind.suffix)
            files.append(PlannedFile(path, kind, index, _hash(sound, kind.name, CUE_VERSION)))
    book = job.output.dir / safe_filename(doc.title)
    book_tags = [[c.title for c in script.chapters], doc.title, doc.author, job.narrator, job.year, job.description]
    book_files = []
    for kind in (k for k in kinds if k.per_book):
        path = book.with_name(book.name + kind.suffix)
        shape = [book_tags, cover, bitrate_for(job, kind)] if kind.audio else [CUE_VERSION]
        # a segment holds a chapter's sound, encoded; the first one keeps its opening frame (segments.py)
        segments = tuple(_hash(SEGMENT_VERSION, sound, kind.name, bitrate_for(job, kind), i == 0)
                         for i, sound in enumerate(chapter_prints)) if kind.segmented else ()  # fmt: skip
        book_files.append(PlannedFile(path, kind, None, _hash(chapter_prints, kind.name, *shape), segments=segments))
    return book_files + files


def build_outputs(
    script: Script, previous: Manifest | None, timings: dict[str, float], progress: FileProgress | None = None
) -> BuildResult:
    out_dir = script.job.output.dir
    planned = plan_files(script)
    before = previous.fingerprints if previous else {}
    fingerprints: dict[str, str] = {}
    stale: list[PlannedFile] = []
    for f in planned:
        relative = os.path.relpath(f.path, out_dir)
        fingerprints[relative] = f.fingerprint
        if not f.path.exists() or before.get(relative) != f.fingerprint:
            stale.append(f)
    if previous and not stale:
        return _reuse(previous, planned, fingerprints)
    result = build_files(script, planned, stale, timings, progress)
    result.fingerprints = fingerprints
    # QA rows of the files not made again carry over; a file no longer planned takes its row with it
    order = {f.path.name: i for i, f in enumerate(planned) if f.kind.audio}
    remade = {f.path.name for f in stale}
    kept = [q for q in (previous.qa if previous else []) if q.file in order and q.file not in remade]
    result.qa = sorted(kept + result.qa, key=lambda q: order[q.file])
    return result


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
