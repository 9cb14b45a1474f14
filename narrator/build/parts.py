"""A chapter too long for ``output.max_file_minutes`` is written as parts: where to cut it (between takes, about
equal lengths, at a paragraph when one is near), and where each part lies in the chapter's audio."""

from __future__ import annotations

import bisect
import itertools
import math
from collections.abc import Sequence
from dataclasses import dataclass

from ..core.records import PartRow
from ..job.spec import PauseSpec
from .assemble import ChapterAudio


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


def plan_parts(
    lengths: Sequence[float],
    gaps: Sequence[float],
    block_starts: Sequence[bool],
    head: float,
    tail: float,
    limit: float,
) -> list[tuple[int, int]]:
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


def part_span(chapter: ChapterAudio, part: Part) -> tuple[int, int]:
    """Where a part's sound begins and ends in its chapter's WAV, in samples: from its first take's first
    sound to its last take's last, or the chapter's own edges where the part has them."""
    rate, placed = chapter.rate, chapter.placements
    start = 0 if part.first == 0 else round(placed[part.first].offset * rate)
    last = placed[part.end - 1]
    end = chapter.samples if part.end == len(placed) else round((last.offset + last.duration) * rate)
    return start, end


def part_row(chapter: ChapterAudio, part: Part, name: str) -> PartRow:
    start, end = part_span(chapter, part)
    return PartRow(
        name=name,
        first_chunk=chapter.placements[part.first].chunk_id,
        start=round(start / chapter.rate, 4),
        end=round(end / chapter.rate, 4),
    )


def part_prelude(chapter: ChapterAudio, part: Part | None, pauses: PauseSpec) -> str | None:
    """ffmpeg filters that cut a part out of its chapter's WAV, sample-exact, and add the chapter's opening
    and closing pauses where it was cut."""
    if part is None:
        return None
    start, end = part_span(chapter, part)
    chain = [f"atrim=start_sample={start}:end_sample={end}", "asetpts=N/SR/TB"]
    if part.first > 0:
        chain.append(f"adelay=delays={round(pauses.chapter_start * chapter.rate)}S:all=1")
    if part.end < len(chapter.placements):
        chain.append(f"apad=pad_len={round(pauses.chapter_end * chapter.rate)}")
    return ",".join(chain)
