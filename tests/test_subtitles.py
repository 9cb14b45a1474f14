"""SRT and VTT from placed takes, directly."""

from __future__ import annotations

from pathlib import Path

from narrator.build.assemble import ChapterAudio, Placement
from narrator.build.subtitles import Cue, chapter_cues, srt, vtt, write_subtitles
from narrator.text.chunker import Chunk
from narrator.text.document import Block, Chapter
from narrator.text.normalise import Preparer


def chunk(cid: str, text: str, block: int = 0, piece: int = 0, kind: str = "paragraph") -> Chunk:
    return Chunk(cid, 0, block, piece, kind, "paragraph", text, 5)  # type: ignore[arg-type]


def chapter_of(*placements: Placement) -> ChapterAudio:
    return ChapterAudio(0, "One", Path("x.wav"), 24_000 * 60, 24_000, placements)


def test_cues_follow_the_placed_sentences_of_each_take():
    chapter = chapter_of(Placement("a", 0.5, 3.0, onsets=(1.25,)), Placement("b", 4.1, 2.0))
    chunks = [chunk("a", "First sentence. Second one."), chunk("b", "Third.", block=1)]
    blocks = [Block("paragraph", "First sentence. Second one."), Block("paragraph", "Third.")]
    cues = chapter_cues(chapter, chunks, blocks)
    assert cues == [Cue(0.5, 1.75, "First sentence."), Cue(1.75, 3.5, "Second one."), Cue(4.1, 6.1, "Third.")]
    shifted = chapter_cues(chapter, chunks, blocks, offset=100.0)
    assert [c.start for c in shifted] == [100.5, 101.75, 104.1]


def test_a_cue_shows_the_printed_text_not_what_the_voice_was_asked_to_say():
    printed = "\u201cMr. Hale\u2019s boat,\u201d she said. Lizzy\u2019s did not come back."
    block = Preparer([("Lizzy", "Lizzie")]).chapter(Chapter("One", (Block("paragraph", printed),))).blocks[0]
    assert block.text.startswith("\"Mister Hale's boat") and "Lizzie" in block.text  # what the voice reads
    chapter = chapter_of(Placement("a", 0.0, 5.0, onsets=(2.4,)))
    cues = chapter_cues(chapter, [chunk("a", block.text)], [block])
    assert [c.text for c in cues] == ["\u201cMr. Hale\u2019s boat,\u201d she said.", "Lizzy\u2019s did not come back."]


def test_a_long_sentence_is_split_into_cues_of_two_short_lines_in_proportion():
    text = ("The boats came in one by one, their lamps low on the water, and the men on the pier counted them "
            "twice before anyone spoke of the one that was missing, or of the weather that had taken it.")  # fmt: skip
    chapter = chapter_of(Placement("a", 10.0, 14.0))
    cues = chapter_cues(chapter, [chunk("a", text)], [Block("paragraph", text)])
    assert " ".join(c.text.replace("\n", " ") for c in cues) == text
    assert len(cues) >= 3 and cues[0].start == 10.0 and cues[-1].end == 24.0
    for cue in cues:
        assert all(len(line) <= 42 for line in cue.text.split("\n")) and cue.text.count("\n") <= 1
        assert 1.0 <= cue.end - cue.start <= 7.0
    assert cues[0].text == "The boats came in one by one,\ntheir lamps low on the water,"  # a clause's end


def test_short_sentences_join_and_a_bare_numeral_heading_has_no_cue():
    chapter = chapter_of(Placement("h", 0.0, 0.6), Placement("a", 1.5, 2.4, onsets=(0.5, 0.9)))
    chunks = [chunk("h", "Chapter One.", kind="heading"), chunk("a", "Yes. No. The tide turned at last.", block=1)]
    blocks = [Block("heading", "Chapter One.", 1, shown="IV."), Block("paragraph", "Yes. No. The tide turned at last.")]
    cues = chapter_cues(chapter, chunks, blocks)
    assert cues == [Cue(1.5, 3.9, "Yes. No. The tide turned at last.")]  # "Yes." and "No." alone: 0.5 s, 0.4 s


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
