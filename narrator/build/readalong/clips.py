"""Each sentence's stretch of its chapter's audio: where a read-along book's highlight starts and stops.

The times are the ones subtitles read (subtitles.said_sentences): a take's place in its chapter is exact
(assembly records it), and inside a take each sentence starts where assembly heard the voice pause before it
(assemble.aligned_seams), or, where it heard none, at its share of the take by characters. A reader plays the
clips one after the other and skips what no clip holds, so the clips tile the chapter: each runs from its
sentence's first sound to the next one's, the pauses between them included.

A line of verse counts as a sentence: a clip whose text runs over several lines is shared out among them at the
pauses the voice makes where each line ends (the same seam finder, on the clip's stretch of the chapter's audio).
List items are blocks of their own already.
"""

from __future__ import annotations

import wave
from collections.abc import Sequence
from dataclasses import dataclass, replace

import numpy as np

from ...core.audio import frame_energy
from ...text.chunker import Chunk
from ...text.document import Block
from ..assemble import ChapterAudio, aligned_seams, quiet_frames
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
        tiled.append(replace(clip, stop=max(clip.start, stop)))
    return [line for clip in tiled for line in _lines(clip, printed[clip.block], chapter)]


def _lines(clip: Clip, shown: str, chapter: ChapterAudio) -> list[Clip]:
    """A clip of verse, one per line; any other clip as it is."""
    text = shown[clip.begin : clip.end]
    if "\n" not in text:
        return [clip]
    spans, at = [], clip.begin
    for line in text.split("\n"):
        if line.strip():
            begin = at + len(line) - len(line.lstrip())
            spans.append((begin, begin + len(line.strip())))
        at += len(line) + 1
    with wave.open(str(chapter.wav)) as audio:
        rate = audio.getframerate()
        audio.setpos(min(audio.getnframes(), round(clip.start * rate)))
        pcm = audio.readframes(max(0, round((clip.stop - clip.start) * rate)))
    energy = frame_energy(pcm, rate // 100)
    loud = np.flatnonzero(~quiet_frames(energy))
    # the lines share the sound, not the pause after it that the clip runs on into
    energy = energy[: loud[-1] + 1] if loud.size else energy
    seams = aligned_seams([end - begin for begin, end in spans], energy, 0.01)
    starts = [clip.start, *(clip.start + seam.end for seam in seams)]
    stops = [*starts[1:], clip.stop]
    return [
        replace(clip, begin=begin, end=end, start=start, stop=stop)
        for (begin, end), start, stop in zip(spans, starts, stops, strict=True)
    ]
