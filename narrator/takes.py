"""Group a chapter's chunks into takes of natural length: one request each.

A take is consecutive chunks of one chapter, never across a scene break, up to about ``target`` characters and
always within both input limits. Where one take ends depends only on nearby text (content-defined, as a
deduplicating backup cuts files): a take ends after a chunk whose text hashes under ``len(text) / target``, so
on average every ``target`` characters, and the decision for one chunk never looks at another. An edit then
changes the take it falls in, and at most the next one (when the edited chunk's own cut appears or goes); an
unchanged book groups the same way every time. A heading never ends a take: it opens the take it introduces.

A group over the input limits is cut again where a looser draw allows (twice as likely, then four times...), still
by each chunk's own text, into as few takes as fit; only as a last resort greedily by size.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

from .chunker import Chunk, Limits
from .tokens import count_tokens

PARAGRAPH_SEPARATOR = "\n\n"  # between paragraphs in one request: the voice hears a paragraph break


@dataclass(frozen=True)
class Take:
    id: str
    chapter: int
    chunks: tuple[Chunk, ...]
    text: str  # what is sent: the chunks' spoken text, paragraphs apart
    tokens: int

    @property
    def chars(self) -> int:
        return len(self.text)


def take_text(chunks: Sequence[Chunk]) -> str:
    """Pieces of one long paragraph join with a space, paragraphs and headings with a paragraph break."""
    parts: list[str] = []
    for chunk in chunks:
        if parts:
            parts.append(" " if chunk.gap == "chunk" else PARAGRAPH_SEPARATOR)
        parts.append(chunk.spoken)
    return "".join(parts)


def make_take(chunks: Sequence[Chunk]) -> Take:
    digest = hashlib.sha256("|".join(c.id for c in chunks).encode("ascii")).hexdigest()[:12]
    text = take_text(chunks)
    tokens = chunks[0].tokens if len(chunks) == 1 else count_tokens(text)
    return Take(f"t{digest}", chunks[0].chapter, tuple(chunks), text, tokens)


def _draw(chunk: Chunk) -> float:
    """A number in [0, 1) that depends on the chunk's text only."""
    return int(hashlib.sha256(chunk.spoken.encode("utf-8")).hexdigest()[:13], 16) / 16**13


def _ends_take(chunk: Chunk, target: int, looseness: int) -> bool:
    if chunk.kind == "heading":
        return False
    return _draw(chunk) * target < chunk.chars * looseness


def group_takes(chunks: Sequence[Chunk], limits: Limits, target: int) -> list[Take]:
    """Takes for a book's chunks (in reading order). ``target`` 0: one chunk per take."""
    if target <= 0:
        return [make_take([c]) for c in chunks]
    takes: list[Take] = []
    for run in _runs(chunks):
        takes += _fit(run, limits, target, 1)
    return takes


def _runs(chunks: Sequence[Chunk]) -> Iterator[list[Chunk]]:
    """Stretches no take may cross: a chapter, or the part of one between scene breaks; a heading starts one."""
    run: list[Chunk] = []
    for chunk in chunks:
        opens = chunk.gap == "scene_break" or (chunk.kind == "heading" and chunk.piece == 0)
        if run and (chunk.chapter != run[-1].chapter or opens):
            yield run
            run = []
        run.append(chunk)
    if run:
        yield run


def _groups(chunks: list[Chunk], target: int, looseness: int) -> list[list[Chunk]]:
    groups: list[list[Chunk]] = [[]]
    for chunk in chunks:
        groups[-1].append(chunk)
        if _ends_take(chunk, target, looseness):
            groups.append([])
    return [g for g in groups if g]


def _fits(take: Take, limits: Limits) -> bool:
    return take.chars <= limits.max_chars and take.tokens <= limits.max_tokens


def _fit(run: list[Chunk], limits: Limits, target: int, looseness: int) -> list[Take]:
    takes: list[Take] = []
    for group in _groups(run, target, looseness):
        take = make_take(group)
        takes += [take] if len(group) == 1 or _fits(take, limits) else _pack(group, limits, target, looseness * 2)
    return takes


def _pack(group: list[Chunk], limits: Limits, target: int, looseness: int) -> list[Take]:
    """A group over the limits: as few takes as fit, cut only where a looser draw allows (content-defined
    again), each as long as the limits let it be. An edit that pushes a group over the limits so cuts it in two;
    only an edit inside a group already cut this way can move the cuts after it in the same group."""
    if looseness > 1 << 10:
        return _greedy(group, limits)
    takes: list[Take] = []
    current: list[Chunk] = []
    for part in _groups(group, target, looseness):
        if current and not _fits(make_take([*current, *part]), limits):
            takes.append(make_take(current))
            current = []
        if not current and len(part) > 1 and not _fits(make_take(part), limits):
            takes += _pack(part, limits, target, looseness * 2)
            continue
        current += part
    if current:
        takes.append(make_take(current))
    return takes


def _greedy(group: list[Chunk], limits: Limits) -> list[Take]:
    takes: list[Take] = []
    current: list[Chunk] = []
    for chunk in group:
        if current and not _fits(make_take([*current, chunk]), limits):
            takes.append(make_take(current))
            current = []
        current.append(chunk)
    if current:
        takes.append(make_take(current))
    return takes
