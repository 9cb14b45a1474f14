"""Group a chapter's chunks into takes of natural length: one request each.

A take is consecutive chunks of one chapter, never across a scene break, up to about ``target`` characters and
always within both input limits. Where one take ends depends only on nearby text (content-defined, as a
deduplicating backup cuts files): a take ends after a chunk whose first words hash under ``len(text) / target``,
so on average every ``target`` characters, and the decision for one chunk never looks at another. An edit then
changes the take it falls in, and at most the next one (when the edited chunk's own cut appears or goes); an
unchanged book groups the same way every time. A heading never ends a take: it opens the take it introduces.

A group over the input limits is cut in two where a looser draw would cut first, still by each chunk's own text,
and each side again until every take fits. There an edit can move a cut, and so change a third take: 7 of 15 000
one-word edits did (see _draw and _fit).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

from .chunker import Chunk, Limits
from .tokens import count_tokens

DRAW_WORDS = 3  # a chunk's draw hashes its first words only: see _draw
MIN_SIDE = 0.25  # a group over the limits is cut, if it can be, where each side keeps this much of max_chars
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
            parts.append(" " if chunk.gap in ("chunk", "speaker") else PARAGRAPH_SEPARATOR)
        parts.append(chunk.spoken)
    return "".join(parts)


def make_take(chunks: Sequence[Chunk]) -> Take:
    digest = hashlib.sha256("|".join(c.id for c in chunks).encode("ascii")).hexdigest()[:12]
    text = take_text(chunks)
    tokens = chunks[0].tokens if len(chunks) == 1 else count_tokens(text)
    return Take(f"t{digest}", chunks[0].chapter, tuple(chunks), text, tokens)


def _draw(chunk: Chunk) -> float:
    """A number in [0, 1) that depends on the chunk's first words only, so that most edits to a paragraph leave
    its cut where it was. Measured on 15 000 random one-word edits (a word inserted, deleted or replaced) of 50
    generated novels, ``target_chars`` 1 800 and the API's limits: hashing the whole text, 3.9 in 1 000 edits
    changed three takes and 91 changed two; hashing the first three words, 0.5 and 15. Two words are too few:
    dialogue lines that open alike draw alike, and takes shrank from 9 paragraphs to 7."""
    text = " ".join(chunk.spoken.split()[:DRAW_WORDS])
    return int(hashlib.sha256(text.encode("utf-8")).hexdigest()[:13], 16) / 16**13


def _ends_take(chunk: Chunk, target: int) -> bool:
    if chunk.kind == "heading":
        return False
    return _draw(chunk) * target < chunk.chars


def group_takes(chunks: Sequence[Chunk], limits: Limits, target: int) -> list[Take]:
    """Takes for a book's chunks (in reading order). ``target`` 0: one chunk per take."""
    if target <= 0:
        return [make_take([c]) for c in chunks]
    takes: list[Take] = []
    for run in _runs(chunks):
        for group in _groups(run, target):
            takes += _fit(group, limits)
    return takes


def _runs(chunks: Sequence[Chunk]) -> Iterator[list[Chunk]]:
    """Stretches no take may cross: a chapter, or the part of one between scene breaks; a heading starts one; a
    take never mixes two speakers (with a cast)."""
    run: list[Chunk] = []
    for chunk in chunks:
        opens = chunk.gap == "scene_break" or (chunk.kind == "heading" and chunk.piece == 0)
        if run and (chunk.chapter != run[-1].chapter or chunk.speaker != run[-1].speaker or opens):
            yield run
            run = []
        run.append(chunk)
    if run:
        yield run


def _groups(chunks: list[Chunk], target: int) -> list[list[Chunk]]:
    groups: list[list[Chunk]] = [[]]
    for chunk in chunks:
        groups[-1].append(chunk)
        if _ends_take(chunk, target):
            groups.append([])
    return [g for g in groups if g]


def _fits(take: Take, limits: Limits) -> bool:
    return take.chars <= limits.max_chars and take.tokens <= limits.max_tokens


def _cut_first(chunk: Chunk) -> float:
    """How readily a take ends after this chunk, lowest first: a looser draw (``_ends_take``) cuts after the chunk
    with the lowest draw per character first. A heading never ends a take."""
    return float("inf") if chunk.kind == "heading" else _draw(chunk) / max(chunk.chars, 1)


def _fit(group: list[Chunk], limits: Limits) -> list[Take]:
    """A group over the limits is cut in two after the chunk that most readily ends a take, among the cuts that
    leave each side a quarter of the limit (any cut, if none does), and each side again until every take fits.

    The cuts depend on the chunks' own text, so an edit inside such a group changes the side it falls in and
    seldom more. Measured on 6 000 one-word edits as in ``_draw`` (whole-text draws): packing greedily, each take
    as long as the limits let it, 6.0 in 1 000 edits changed three takes or more (up to four); cutting at the
    readiest chunk anywhere, 5.3 (up to four: a cut next to the group's end leaves a long side to cut again);
    only where both sides fit, 6.3 (up to five: a group that grows past twice the limit is cut anew from the
    top); a quarter of the limit each side, 3.8, never more than three."""
    take = make_take(group)
    if len(group) == 1 or _fits(take, limits):
        return [take]
    order = sorted(range(1, len(group)), key=lambda cut: _cut_first(group[cut - 1]))
    total, before = sum(c.chars for c in group), [0]
    for chunk in group:
        before.append(before[-1] + chunk.chars)
    least = limits.max_chars * MIN_SIDE
    cut = next((c for c in order if least <= before[c] <= total - least), order[0])
    return _fit(group[:cut], limits) + _fit(group[cut:], limits)
