"""Which files a build makes, and which of them are out of date.

Incremental: every output file has a fingerprint of everything that shapes it (its takes, pauses, mastering,
tags, cover). When every file is there with the fingerprint of the last run, nothing is assembled or encoded
again; otherwise only the files whose fingerprint changed are made again (build.py makes them).
"""

from __future__ import annotations

import bisect
import hashlib
import itertools
import json
import math
import os
from collections.abc import Sequence
from pathlib import Path

from . import errors
from .assemble import gap_seconds
from .build import BuildResult, FileProgress, Part, PlannedFile, bitrate_for, build_files
from .chunker import Chunk
from .outputkinds import OUTPUT_KINDS
from .records import Manifest, Placement
from .script import Script
from .writers import safe_filename

FORMAT_VERSION = 1  # bump when the way files are made changes, so old outputs are rebuilt
CUE_VERSION = 2  # the same for subtitles alone (2: sentences placed at pauses), so audio is not encoded again


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
    parts = {i: _chapter_parts(script, script.by_chapter[i]) if audio_kinds else [None] for i in script.by_chapter}
    tracks = sum(len(p) for p in parts.values())
    track = 0
    files: list[PlannedFile] = []
    chapter_prints = []
    for index, chapter in enumerate(script.chapters):
        # the takes' content, not their cache keys: a take made again for the same text reaches every file
        takes = [_audio_hash(script, c) for c in script.by_chapter[index]]
        sound = _hash(FORMAT_VERSION, takes, job.pauses.model_dump(), job.output.mastering)
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
        book_files.append(PlannedFile(path, kind, None, _hash(chapter_prints, kind.name, *shape)))
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
