"""SRT and VTT from placed takes, directly."""

from __future__ import annotations

from pathlib import Path

from narrator.assemble import ChapterAudio, Placement
from narrator.chunker import Chunk
from narrator.subtitles import Cue, chapter_cues, srt, vtt, write_subtitles


def chunk(cid: str, text: str) -> Chunk:
    return Chunk(cid, 0, 0, 0, "paragraph", "paragraph", text, 5)


def test_cues_follow_the_placed_sentences_of_each_take():
    chapter = ChapterAudio(0, "One", Path("x.wav"), 24_000 * 10, 24_000, (
        Placement("a", 0.5, 3.0, onsets=(1.25,)),
        Placement("b", 4.1, 2.0),
    ))  # fmt: skip
    chunks = [chunk("a", "First sentence. Second one."), chunk("b", "Third.")]
    cues = chapter_cues(chapter, chunks)
    assert cues == [Cue(0.5, 1.75, "First sentence."), Cue(1.75, 3.5, "Second one."), Cue(4.1, 6.1, "Third.")]
    shifted = chapter_cues(chapter, chunks, offset=100.0)
    assert [c.start for c in shifted] == [100.5, 101.75, 104.1]


def test_srt_and_vtt_stamps():
    cues = [Cue(0.0, 1.5, "Hello."), Cue(3661.0004, 3662.9996, "Later.")]
    assert srt(cues) == "1\n00:00:00,000 --> 00:00:01,500\nHello.\n\n2\n01:01:01,000 --> 01:01:03,000\nLater.\n"
    assert vtt(cues).startswith("WEBVTT\n\n00:00:00.000 --> 00:00:01.500\nHello.\n")
    assert "01:01:01.000 --> 01:01:03.000\nLater." in vtt(cues)


def test_write_subtitles_writes_one_file_per_format_beside_the_stem(tmp_path):
    stem = tmp_path / "01 A.B title"  # dots in a title are not a suffix
    written = write_subtitles([Cue(0, 1, "Hi.")], stem, ["srt", "vtt"])
    assert [p.name for p in written] == ["01 A.B title.srt", "01 A.B title.vtt"]
    assert written[0].read_text().startswith("1\n00:00:00,000")
