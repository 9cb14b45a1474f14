"""The cast on the review page: who reads each take, which quotation it belongs to, and the editor's change of a
quotation's speaker (written to the cast file as the editor's word: the next run redoes that quotation's takes)."""

from __future__ import annotations

from typing import Any

from ..job.cast import CastQuotation, cast_path, read_cast, write_cast
from ..synthesis.script import Script
from ..text.dialogue.quotes import find_quotations


def quotation_of_chunks(script: Script, chapter: int) -> dict[str, str]:
    """Chunk id -> the id of the quotation it reads a part of (chunks of narration have none)."""
    blocks = script.chapters[chapter].blocks
    parts: dict[int, list[tuple[int, int, str]]] = {}
    for q in find_quotations(chapter, blocks):
        for block, (begin, end) in q.parts:
            parts.setdefault(block, []).append((begin, end, q.id))
    found: dict[str, str] = {}
    at: dict[int, int] = {}
    for chunk in script.by_chapter[chapter]:
        start = at.get(chunk.block, 0)
        at[chunk.block] = start + len(chunk.text)
        first = start + len(chunk.text) - len(chunk.text.lstrip())
        for begin, end, quotation in parts.get(chunk.block, []):
            if begin <= first < end:
                found[chunk.id] = quotation
    return found


def speakers_of(script: Script) -> list[str]:
    """Who may read a take: the narrator and every character of the cast file."""
    cast = read_cast(cast_path(script.job.path))
    return ["narrator", *(c.name for c in cast.characters)] if cast else ["narrator"]


def set_speaker(script: Script, quotation: str, body: dict[str, Any]) -> dict[str, Any]:
    """The editor gives a quotation to another speaker (a character of the cast, or the narrator)."""
    speaker = body.get("speaker")
    path = cast_path(script.job.path)
    cast = read_cast(path)
    if cast is None:
        raise ValueError("the job has no cast file yet: run `narrator cast` first")
    if speaker not in ["narrator", *(c.name for c in cast.characters)]:
        raise ValueError(f"not a speaker of the cast: {speaker!r}")
    for k, q in enumerate(cast.quotations):
        if q.id == quotation:
            cast.quotations[k] = CastQuotation(q.id, q.chapter, q.excerpt, str(speaker), 1.0, "editor")
            write_cast(path, cast, script.job.path.name)
            return {"quotation": quotation, "speaker": speaker}
    raise ValueError(f"no quotation {quotation} in the cast file")
