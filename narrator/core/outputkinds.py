"""Every kind of output file, in one table: what a job's ``output.formats`` may name, and how each is made.

The spec's choices, the files a build plans, which files are encoded, mastered and checked, and how each
carries its cover all derive from this table; a new kind is one row here plus its writer.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal


@dataclass(frozen=True)
class OutputKind:
    name: str  # as output.formats names it
    suffix: str
    per_chapter: bool  # one file per chapter (per part, for audio of a chapter cut into parts)
    per_book: bool  # one file for the whole book, with a marker per chapter
    codec: tuple[str, ...] = ()  # ffmpeg encoder arguments; none: a text file (subtitles)
    muxer: str = ""  # what ffmpeg writes (for a book file: the stream, or the segments, the final remux reads)
    remux: tuple[str, ...] = ()  # book files: arguments of the remux that adds markers, tags and cover...
    final_muxer: str = ""  # ...and the muxer it writes
    cover: Literal["stream", "vorbis", "none"] = "none"  # an attached-picture stream, or a Vorbis comment
    preset_bitrate: bool = False  # a mastering preset's own MP3 bitrate applies (ACX: 192k)
    tags: Literal["id3", "mp4", "vorbis", "none"] = "none"
    # a book file encoded per chapter (segments.py), then joined: its frames remuxed into one stream (the M4B), or
    # each chapter's file packed with the text into the EPUB 3 whose text lights up as it is read (readalong/)
    joined: Literal["", "remux", "epub"] = ""

    @property
    def segmented(self) -> bool:
        return bool(self.joined)

    @property
    def read_along(self) -> bool:
        return self.joined == "epub"

    @property
    def audio(self) -> bool:
        """Encoded from the chapters' audio: mastered, and checked against the preset afterwards."""
        return bool(self.codec)


# AAC's "fast" coder: a third of "twoloop"'s time on speech (17 against 55 s per hour here), and the coder its
# authors made ffmpeg's default in 2018 for all but the lowest bitrates. Opus wants 48 kHz; ffmpeg's Ogg muxer
# takes no picture stream, so the cover goes into a Vorbis comment (mutagen). The book MP3 gets ID3 CHAP/CTOC
# frames from ffmpeg, in order (mutagen would reorder them by size). The M4B's AAC is encoded per chapter and
# joined by remuxing (segments.py); the book MP3 is still one continuous encode (joining MP3 segments would need
# LAME's encoder delay and bit reservoir handled). The read-along EPUB holds each chapter's audio as AAC in MP4:
# like MP3, a core media type of EPUB 3, but its edit list states the encoder's priming exactly (an MP3's delay is
# known to a player only through LAME's header), so a clip's times hold to the sample; and it is the M4B's codec.
# Table order is the order files are listed.
OUTPUT_KINDS: dict[str, OutputKind] = {
    kind.name: kind
    for kind in (
        OutputKind(
            "m4b",
            ".m4b",
            per_chapter=False,
            per_book=True,
            codec=("-c:a", "aac", "-aac_coder", "fast"),
            muxer="adts",
            remux=("-movflags", "+faststart", "-brand", "M4B "),
            final_muxer="ipod",
            cover="stream",
            tags="mp4",
            joined="remux",
        ),
        OutputKind(
            "mp3-book",
            ".mp3",
            per_chapter=False,
            per_book=True,
            codec=("-c:a", "libmp3lame"),
            muxer="mp3",
            remux=("-id3v2_version", "3"),
            final_muxer="mp3",
            cover="stream",
            preset_bitrate=True,
            tags="id3",
        ),
        OutputKind(
            "mp3",
            ".mp3",
            per_chapter=True,
            per_book=False,
            codec=("-c:a", "libmp3lame", "-id3v2_version", "3"),
            muxer="mp3",
            cover="stream",
            preset_bitrate=True,
            tags="id3",
        ),
        OutputKind(
            "opus",
            ".opus",
            per_chapter=True,
            per_book=False,
            codec=("-c:a", "libopus", "-ar", "48000", "-application", "voip"),
            muxer="ogg",
            cover="vorbis",
            tags="vorbis",
        ),
        OutputKind(
            "epub",
            ".epub",
            per_chapter=False,
            per_book=True,
            codec=("-c:a", "aac", "-aac_coder", "fast"),
            muxer="ipod",
            remux=("-movflags", "+faststart"),
            joined="epub",
        ),
        OutputKind("srt", ".srt", per_chapter=True, per_book=True),
        OutputKind("vtt", ".vtt", per_chapter=True, per_book=True),
    )
}
