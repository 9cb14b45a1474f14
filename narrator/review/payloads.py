"""What the review page's API sends, typed: a chapter's takes as the page shows them and the book's counts.
``python -m devtools.schemas`` writes their JSON schemas beside the reports' (docs/schemas/review-*.json); a test
checks the committed files, and the page tests validate what the server really sends against them."""

from __future__ import annotations

import json
from typing import Any

from pydantic import BaseModel

from ..core.records import ProofVerdict
from ..job.review import Status


class Earlier(BaseModel):
    """The decision made for the take that stood here before its text changed (shown as stale, never applied)."""

    status: Status
    note: str | None


class ProofWord(BaseModel):
    word: str
    differs: bool  # in a run of words that differ between the text and what was heard


class PageProof(BaseModel):
    """What proof-listening heard of the take in the book (synthesis/proofs.py): for a failed one, the text and
    the transcript side by side, differing words marked, and where in the take to hear the difference."""

    verdict: ProofVerdict
    error_rate: float | None
    longest_run: int | None
    retakes: int
    sent: list[ProofWord]  # a failed take's text, word by word (empty when it passed)
    heard: list[ProofWord]  # its transcript
    span: list[float] | None  # [from, to] seconds into the take: the longest run that differs


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
    proof: PageProof | None = None  # with proof: in the job, once heard
    retakes: list[int] = []  # proof-listening's takes of it, besides the one in the book (/audio/<id>/retake/<n>)
    speaker: str | None = None  # with a cast: who reads it (a character of the cast file, or narrator)
    quotation: str | None = None  # with a cast: the quotation it reads a part of (its speaker can be changed)


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
    proof_failed: int = 0  # takes that still say something else than their text


class Voice(BaseModel):
    instructions: bool  # every voice of the book reads instructions: the page offers them


class PageCharacter(BaseModel):
    """A character of the cast file, as the page's cast panel shows it."""

    name: str
    lines: int
    voice: str | None
    instructions: str | None


class PageBook(BaseModel):
    title: str
    chapters: list[ChapterCounts]
    totals: dict[str, int]
    lexicon: dict[str, str]
    voice: Voice
    speakers: list[str] | None = None  # with a cast: narrator and the cast file's characters
    cast: list[PageCharacter] | None = None  # with a cast: the characters, their voices and direction
    voices: list[str] = []  # the voices the job's provider offers (a character's choice)


PAYLOADS: dict[str, type[BaseModel]] = {"review-book": PageBook, "review-chapter": PageChapter}


def to_json(value: Any) -> str:
    """JSON of a payload, or of a mapping or list holding payloads."""
    return json.dumps(value, default=lambda o: o.model_dump(mode="json"))
