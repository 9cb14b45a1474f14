"""What the review page's API sends, typed: a chapter's takes as the page shows them and the book's counts.
``python -m devtools.schemas`` writes their JSON schemas beside the reports' (docs/schemas/review-*.json); a test
checks the committed files, and the page tests validate what the server really sends against them."""

from __future__ import annotations

import json
from typing import Any

from pydantic import BaseModel

from ..job.review import Status


class Earlier(BaseModel):
    """The decision made for the take that stood here before its text changed (shown as stale, never applied)."""

    status: Status
    note: str | None


class PageTake(BaseModel):
    id: str
    text: str  # what is said: the editor's text, when edited
    source: str  # the book's text
    chunks: list[str]
    status: Status
    note: str | None
    overridden: bool  # the editor's text replaces the book's
    instructions: str | None
    stale: bool
    was: Earlier | None
    variants: list[int]  # the takes made of it, in the cache
    chosen: int | None  # the one the book uses
    start: float | None  # seconds into the book (the M4B's timeline), once built
    flags: list[str]  # assembly's warnings (a pace too fast, a clipped start)
    waveform: list[float]  # peaks, 0..1
    seconds: float | None


class PageChapter(BaseModel):
    index: int  # from 0
    title: str
    takes: list[PageTake]


class ChapterCounts(BaseModel):
    index: int
    title: str
    takes: int
    approved: int
    rejected: int
    unheard: int
    stale: int


class Voice(BaseModel):
    instructions: bool  # every voice of the book reads instructions: the page offers them


class PageBook(BaseModel):
    title: str
    chapters: list[ChapterCounts]
    totals: dict[str, int]
    lexicon: dict[str, str]
    voice: Voice


PAYLOADS: dict[str, type[BaseModel]] = {"review-book": PageBook, "review-chapter": PageChapter}


def to_json(value: Any) -> str:
    """JSON of a payload, or of a mapping or list holding payloads."""
    return json.dumps(value, default=lambda o: o.model_dump(mode="json"))
