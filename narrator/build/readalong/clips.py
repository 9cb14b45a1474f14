"""Each sentence's stretch of its chapter's audio: where a read-along book's highlight starts and stops.

The times are the ones subtitles read (subtitles.said_sentences): a take's place in its chapter is exact
(assembly records it), and inside a take each sentence starts where assembly heard the voice pause before it
(assemble.find_seams), or, where it heard none, at its share of the take by characters. A reader plays the
clips one after the other and skips what no clip holds, so the clips tile the chapter: each runs from its
sentence's first sound to the next one's, the pauses between them included.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from ...text.chunker import Chunk
from ...text.document import Block
from ..assemble import ChapterAudio
from ..subtitles import said_sentences


@dataclass(frozen=True)
class Clip:
    """One sentence: its span of its block's printed text, and its stretch of the chapter's audio."""

    chapter: int
    block: int
    begin: int  # characters of the block's printed text (Block.shown)
    end: int
    start: float  # seconds into the chapter's audio
    stop: float


def chapter_clips(chapter: ChapterAudio, chunks: Sequence[Chunk], blocks: Sequence[Block]) -> list[Clip]:
    """The chapter's sentences in reading order, each with its clip; a sentence whose words the text alignment
    gave to its neighbour gives that neighbour its time too."""
    said, printed = said_sentences(chapter, chunks, blocks, bare_numbers=True)
    clips: list[Clip] = []
    for s in said:
        sentence = printed[s.block][s.begin : s.end]
        if not sentence.strip():
            continue  # its time goes to the clip before it, which runs on to the next
        begin = s.begin + len(sentence) - len(sentence.lstrip())
        end = s.end - (len(sentence) - len(sentence.rstrip()))
        clips.append(Clip(chapter.index, s.block, begin, end, s.start, s.stop))
    tiled = []
    for k, clip in enumerate(clips):
        stop = clips[k + 1].start if k + 1 < len(clips) else max(clip.stop, chapter.duration)
        tiled.append(Clip(clip.chapter, clip.block, clip.begin, clip.end, clip.start, max(clip.start, stop)))
    return tiled
