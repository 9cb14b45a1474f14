import pytest
from mutagen.id3 import ID3

from narrator.build.assemble import ChapterAudio
from narrator.build.writers import BookEncoder, safe_filename
from narrator.core import ffmpeg
from narrator.core.audio import Audio
from narrator.core.errors import ToolError
from narrator.core.outputkinds import OUTPUT_KINDS
from tests.helpers import read_metadata, wav_bytes


@pytest.mark.parametrize(
    ("title", "expected"),
    [
        ("Chapter 1: The Storm", "Chapter 1 The Storm"),
        ('What? "No" <never> a/b\\c|d*', "What No never a b c d"),
        ("CON", "_CON"),
        ("aux.txt", "_aux.txt"),
        ("Trailing dots...", "Trailing dots"),
        ("   ", "untitled"),
        ("tab\tand\nnewline", "tab and newline"),
        ("Café – naïve", "Café – naïve"),
    ],
)
def test_safe_filename(title, expected):
    assert safe_filename(title) == expected


def test_long_names_are_cut_on_a_character_boundary():
    name = safe_filename("é" * 200)
    assert len(name.encode("utf-8")) <= 100 and name == "é" * 50


def test_a_failing_book_encoder_says_why_and_leaves_no_file(tmp_path):
    wav = tmp_path / "chapter.wav"
    wav.write_bytes(wav_bytes(Audio(b"\x00\x10" * 24_000, 24_000)))
    dest = tmp_path / "Book.m4b"
    encoder = BookEncoder(dest, kind=OUTPUT_KINDS["m4b"], rate=24_000, bitrate="-5k", work_dir=tmp_path)
    with pytest.raises(ToolError, match=r"encoding Book\.m4b: .+"):
        encoder.feed(wav)
        encoder.finish([], {"title": "Book"}, None)
    assert not dest.exists() and not list(tmp_path.glob("*.tmp"))


def test_a_book_encoder_makes_one_stream_of_its_chapters(tmp_path):
    chapters = []
    for i, seconds in enumerate((1.5, 2.25)):
        wav = tmp_path / f"chapter-{i}.wav"
        samples = round(seconds * 24_000)
        wav.write_bytes(wav_bytes(Audio(b"\x00\x10\x00\xf0" * (samples // 2), 24_000)))
        chapters.append(ChapterAudio(i, f"Part {i + 1}", wav, samples, 24_000, ()))
    dest = tmp_path / "Book.mp3"
    encoder = BookEncoder(dest, kind=OUTPUT_KINDS["mp3-book"], rate=24_000, bitrate="64k", work_dir=tmp_path)
    for chapter in chapters:
        encoder.feed(chapter.wav)
    encoder.finish(chapters, {"title": "Book", "artist": "Someone"}, None)
    frames = ID3(dest).getall("CHAP")  # ffmpeg would report times less the encoder's delay
    assert [(c.start_time, c.end_time) for c in frames] == [(0, 1500), (1500, 3750)]
    assert [c.sub_frames["TIT2"].text[0] for c in frames] == ["Part 1", "Part 2"]
    meta = read_metadata(dest)
    assert meta["tags"]["title"] == "Book" and meta["tags"]["artist"] == "Someone"
    assert ffmpeg.decode(dest, 24_000).duration == pytest.approx(3.75, abs=0.05)
