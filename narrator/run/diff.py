"""``narrator diff``: what changed in the book since its last build, and what a run would do about it (takes to
request, what that costs, files to encode again). Reads the job, the cache and the last manifest; sends nothing,
writes nothing. ``--check`` makes it a gate for CI: exit 1 while work is pending."""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

from ..build.fileplan import FilePlanner, PlannedFile, is_stale
from ..core.records import MANIFEST, read_manifest
from ..job.spec import Job
from ..synthesis.script import Script, prepare_script
from .planning import make_plan

EXCERPT = 60  # characters of a changed text shown


# revoiced: the same text, asked for in another voice or direction (a recast character, the editor's instructions)
ChangeKind = Literal["added", "removed", "changed", "revoiced"]


@dataclass(frozen=True)
class ChunkChange:
    """A chunk whose text is new, gone or different since the last build (its opening words)."""

    kind: ChangeKind
    chunk: str
    text: str


@dataclass
class ChapterDiff:
    number: int
    title: str
    changes: list[ChunkChange] = field(default_factory=list)
    files: list[str] = field(default_factory=list)  # files a run would make again


@dataclass
class BookDiff:
    requests: int
    cost_usd: float
    chapters: list[ChapterDiff]  # only those with changes or files to make
    built: bool  # there is a last build to compare with
    # whole-book files a run would make again: {"file", "how"}, how "remux" (from its chapters' segments, only the
    # changed chapters' encoded) or "encode" (the whole book)
    books: list[dict[str, str]] = field(default_factory=list)
    proof_requests: int = 0  # takes a run would hear (proof:), their cost in cost_usd

    @property
    def pending(self) -> bool:
        return self.requests > 0 or any(c.files for c in self.chapters) or bool(self.books)

    def to_json(self) -> dict[str, Any]:
        return {
            "requests": self.requests,
            "cost_usd": round(self.cost_usd, 4),
            "built": self.built,
            "chapters": [asdict(c) for c in self.chapters],
            "books": self.books,
            "proof_requests": self.proof_requests,
        }


def _excerpt(text: str) -> str:
    return text if len(text) <= EXCERPT else text[: EXCERPT - 1].rstrip() + "…"


def diff_book(job: Job, script: Script | None = None) -> BookDiff:
    script = script or prepare_script(job)
    out_dir = job.output.dir
    last = read_manifest(out_dir / MANIFEST)
    before = {c.id: c for c in last.chunks} if last else {}
    now = {c.id for c in script.chunks}
    rows = [ChapterDiff(i + 1, c.title) for i, c in enumerate(script.chapters)]
    # an edited paragraph is a new chunk where an old one was: "changed" when a removed chunk held its place
    removed = {(c.chapter, c.block, c.piece): c for c in before.values() if c.id not in now}
    asked: set[str] = set()
    for chunk in script.chunks:
        if chunk.id in before:
            same_text = all(c.id in before for c in script.take_of[chunk.id].chunks)  # else an edit's neighbour
            if same_text and before[chunk.id].cache_key != script.keys[chunk.id] and script.keys[chunk.id] not in asked:
                asked.add(script.keys[chunk.id])  # a take's chunks share its key: the take is listed once
                who = f"{chunk.speaker}: " if job.cast is not None else ""
                rows[chunk.chapter].changes.append(ChunkChange("revoiced", chunk.id, _excerpt(who + chunk.spoken)))
            continue
        old = removed.pop((chunk.chapter + 1, chunk.block, chunk.piece), None)
        kind: ChangeKind = "changed" if old is not None else "added"
        rows[chunk.chapter].changes.append(ChunkChange(kind, chunk.id, _excerpt(chunk.spoken)))
    for old in removed.values():
        if old.chapter <= len(rows):
            rows[old.chapter - 1].changes.append(ChunkChange("removed", old.id, _excerpt(old.text)))
    cached = script.cached_keys()
    planner = FilePlanner(script)
    fingerprints = last.fingerprints if last else {}
    ready = []
    for index, row in enumerate(rows):
        if all(script.key_of(t) in cached for t in script.takes_by_chapter[index]):
            planned = planner.chapter(index)
            ready.append(planned)
            row.files = [os.path.relpath(f.path, out_dir) for f in planned.files if is_stale(f, fingerprints, out_dir)]
        else:  # a take to request: every file of the chapter is made again
            row.files = [os.path.relpath(f.path, out_dir) for f in _chapter_files(planner, index)]
    complete = len(ready) == len(rows)
    stale = [f.kind for f in planner.book(ready) if is_stale(f, fingerprints, out_dir)] if complete else None
    books = [
        {"file": os.path.relpath(planner.book_path(k), out_dir), "how": "remux" if k.segmented else "encode"}
        for k in planner.book_kinds
        if stale is None or k in stale
    ]
    plan = make_plan(job, script)
    chapters = [r for r in rows if r.changes or r.files]
    heard = plan.proof.takes_to_hear if plan.proof else 0
    requests = plan.total.requests_to_send or 0
    return BookDiff(requests, plan.total.cost_to_finish_usd, chapters, last is not None, books, heard)


def _chapter_files(planner: FilePlanner, index: int) -> list[PlannedFile]:
    """A chapter's files before its takes exist: named as planned, whatever their fingerprints will be."""
    stem = planner.stem(index)
    return [PlannedFile(stem.with_name(stem.name + k.suffix), k, index, "") for k in planner.kinds if k.per_chapter]


def render_diff(diff: BookDiff) -> str:
    if not diff.built:
        head = "no build yet: a run makes everything"
    elif not diff.pending:
        return "up to date: nothing to request, nothing to encode"
    else:
        head = f"{diff.requests} take(s) to request, about ${diff.cost_usd:.4f}"
    lines = [head]
    for chapter in diff.chapters:
        lines.append(f"chapter {chapter.number} {chapter.title}:")
        lines += [f"  {c.kind:>7} {c.chunk}: {c.text}" for c in chapter.changes]
        lines += [f"  encode  {name}" for name in chapter.files]
    if diff.books:
        lines.append("the whole book:")
        lines += [f"  {book['how']:>6}  {book['file']}" for book in diff.books]
    return "\n".join(lines)
