"""Output writers, one per kind: tagged MP3 or Opus per chapter, M4B or MP3 for the book with chapter markers,
JSON files.
Every file is written beside its destination under a temporary name, then renamed into place."""

from __future__ import annotations

import base64
import contextlib
import os
import re
import subprocess
import threading
import unicodedata
from collections.abc import Callable, Sequence
from functools import partial
from pathlib import Path
from typing import NoReturn

from ..core import ffmpeg
from ..core.audio import PcmStream, atomic_write
from ..core.errors import ToolError
from ..core.outputkinds import OutputKind
from ..text.document import Cover
from .assemble import ChapterAudio

_UNSAFE = re.compile(r'[<>:"/\\|?*\x00-\x1f]')
_RESERVED = {
    "CON",
    "PRN",
    "AUX",
    "NUL",
    *(f"COM{i}" for i in range(1, 10)),
    *(f"LPT{i}" for i in range(1, 10)),
}


def safe_filename(name: str, max_length: int = 100) -> str:
    """A file name that is valid on Windows, macOS and Linux, and readable."""
    name = unicodedata.normalize("NFC", name)
    name = _UNSAFE.sub(" ", name)
    name = re.sub(r"\s+", " ", name).strip().rstrip(". ")
    if name.split(".")[0].upper() in _RESERVED:
        name = f"_{name}"
    if len(name.encode("utf-8")) > max_length:
        name = name.encode("utf-8")[:max_length].decode("utf-8", errors="ignore").rstrip(". ")
    return name or "untitled"


def cover_args(cover_file: Path | None, input_index: int) -> tuple[list[str], list[str]]:
    if cover_file is None:
        return [], []
    return (
        ["-i", str(cover_file)],
        [
            "-map",
            f"{input_index}:v",
            "-c:v",
            "copy",
            "-disposition:v:0",
            "attached_pic",
            "-metadata:s:v",
            "title=Cover",
            "-metadata:s:v",
            "comment=Cover (front)",
        ],
    )


def _metadata_args(tags: dict[str, str | None]) -> list[str]:
    args: list[str] = []
    for key, value in tags.items():
        if value:
            args += ["-metadata", f"{key}={value}"]
    return args


def encode_atomically(
    dest: Path,
    muxer: str,
    args: list[str],
    what: str,
    finish: Callable[[Path], None] | None = None,
    stdin: Sequence[Path] | None = None,
) -> None:
    """ffmpeg writes a temporary file, ``finish`` may add to it, then it is renamed into place. ``stdin``: files
    sent to ffmpeg's standard input, one after the other."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = dest.with_name(f".{dest.name}.tmp")
    try:
        ffmpeg.run([*args, "-f", muxer, str(tmp)], what, stdin=stdin)
        if finish is not None:
            finish(tmp)
        os.replace(tmp, dest)
    finally:
        tmp.unlink(missing_ok=True)


def write_cover(cover: Cover | None, work_dir: Path) -> Path | None:
    if cover is None:
        return None
    path = work_dir / f"cover{cover.extension}"
    atomic_write(path, cover.data)
    return path


def write_chapter(
    wav: Path,
    dest: Path,
    *,
    filters: tuple[list[str], str],
    kind: OutputKind,
    title: str,
    album: str,
    artist: str | None,
    track: int,
    total: int,
    cover_file: Path | None,
    bitrate: str,
) -> None:
    """One chapter file (or one part of a chapter) from the chapter's WAV, through ``filters`` (mastering.py's
    mastering_filters: the ffmpeg arguments and the stream to map)."""
    cover_in, cover_map = cover_args(cover_file if kind.cover == "stream" else None, 1)
    tags = {
        "title": title,
        "album": album,
        "artist": artist,
        "album_artist": artist,
        "track": f"{track}/{total}",
        "genre": "Audiobook",
    }
    filter_args, audio = filters
    args = [
        "-i",
        str(wav),
        *cover_in,
        *filter_args,
        "-map",
        audio,
        *cover_map,
        *kind.codec,
        "-b:a",
        bitrate,
        *_metadata_args(tags),
    ]
    finish = partial(_vorbis_cover, cover_file) if cover_file is not None and kind.cover == "vorbis" else None
    encode_atomically(dest, kind.muxer, args, f"encoding {dest.name}", finish)


def _vorbis_cover(cover_file: Path, path: Path) -> None:
    """The cover as an Ogg file carries it: a FLAC picture block in a METADATA_BLOCK_PICTURE comment."""
    from mutagen.flac import Picture
    from mutagen.oggopus import OggOpus

    picture = Picture()
    picture.type = 3  # front cover
    picture.mime = "image/png" if cover_file.suffix == ".png" else "image/jpeg"
    picture.desc = "Cover"
    picture.data = cover_file.read_bytes()
    tags = OggOpus(path)
    tags["metadata_block_picture"] = [base64.b64encode(picture.write()).decode("ascii")]
    tags.save()


def ffmetadata(spans: Sequence[tuple[str, int]], rate: int, tags: dict[str, str | None]) -> str:
    """ffmpeg's metadata file: the book's tags, and a marker per chapter for ``spans`` (title, length in samples
    at ``rate``), in samples: each marker sits exactly where its chapter's audio begins."""

    def escape(value: str) -> str:
        return re.sub(r"([=;#\\\n])", r"\\\1", value)

    lines = [";FFMETADATA1"]
    lines += [f"{k}={escape(v)}" for k, v in tags.items() if v]
    start = 0
    for title, samples in spans:
        lines += [
            "[CHAPTER]",
            f"TIMEBASE=1/{rate}",
            f"START={start}",
            f"END={start + samples}",
            f"title={escape(title)}",
        ]
        start += samples
    return "\n".join(lines) + "\n"


# Whole-book files (outputkinds.py) are made in two steps: the audio is encoded while the chapters are still being
# made, then remuxed without re-encoding into the final file with markers, tags and cover (the markers need every
# chapter's length first).


class BookEncoder:
    """One file for the whole book. Chapters are fed in order, as each is ready, to a single ffmpeg encoding
    one continuous stream (compressed audio is never joined byte-wise); ``finish`` remuxes that stream with
    the chapter markers, tags and cover. Only the encoder's own buffers are in memory."""

    def __init__(self, dest: Path, *, kind: OutputKind, rate: int, bitrate: str, work_dir: Path):
        self.dest = dest
        self.kind = kind
        self._work_dir = work_dir
        self._audio = work_dir / f"book-audio.{kind.name}"
        command = [
            ffmpeg.executable(),
            "-hide_banner",
            "-loglevel",
            "error",
            "-y",
            "-f",
            "s16le",
            "-ar",
            str(rate),
            "-ac",
            "1",
            "-i",
            "pipe:0",
            *kind.codec,
            "-b:a",
            bitrate,
            "-f",
            kind.muxer,
            str(self._audio),
        ]
        self._proc = ffmpeg.popen(command, stdin=subprocess.PIPE, stderr=subprocess.PIPE)
        self._errors: list[bytes] = []
        self._stderr = threading.Thread(target=lambda: self._errors.append(self._proc.stderr.read()), daemon=True)  # type: ignore[union-attr]
        self._stderr.start()

    def feed(self, wav: Path) -> None:
        """Append one chapter's audio (a WAV at the encoder's rate)."""
        assert self._proc.stdin is not None
        stream = PcmStream(wav=True)
        try:
            with wav.open("rb") as f:
                while block := f.read(1 << 20):
                    self._proc.stdin.write(stream.feed(block))
        except BrokenPipeError:
            self._fail()  # ffmpeg stopped: its own message says why

    def finish(self, chapters: Sequence[ChapterAudio], tags: dict[str, str | None], cover_file: Path | None) -> None:
        assert self._proc.stdin is not None
        with contextlib.suppress(BrokenPipeError):
            self._proc.stdin.close()
        if self._proc.wait() != 0:
            self._fail()
        self._stderr.join()
        metadata = self._work_dir / f"{self.kind.name}-metadata.txt"
        spans = [(c.title, c.samples) for c in chapters]
        atomic_write(metadata, ffmetadata(spans, chapters[0].rate if chapters else 1, tags).encode("utf-8"))
        cover_in, cover_map = cover_args(cover_file, 2)
        args = [
            "-i",
            str(self._audio),
            "-i",
            str(metadata),
            *cover_in,
            "-map",
            "0:a",
            *cover_map,
            "-map_metadata",
            "1",
            "-map_chapters",
            "1",
            "-c:a",
            "copy",
            *self.kind.remux,
        ]
        encode_atomically(self.dest, self.kind.final_muxer, args, f"writing {self.dest.name}")
        self._audio.unlink()

    def abort(self) -> None:
        """Stop the encoder (another part of the build failed); the destination is left untouched."""
        with contextlib.suppress(OSError):
            self._proc.kill()
        self._proc.wait()
        self._audio.unlink(missing_ok=True)

    def _fail(self) -> NoReturn:
        self._proc.kill()
        self._proc.wait()
        self._stderr.join()
        lines = b"".join(self._errors).decode("utf-8", errors="replace").strip().splitlines()
        raise ToolError(f"ffmpeg failed while encoding {self.dest.name}: {lines[-1] if lines else 'no message'}")


def book_tags(
    kind: OutputKind, title: str, author: str | None, narrator: str | None, year: str | None, description: str | None
) -> dict[str, str | None]:
    # media_type 2 is the iTunes "stik" for an audiobook; players that show a narrator read the composer tag
    return {
        "title": title,
        "album": title,
        "artist": author,
        "album_artist": author,
        "composer": narrator,
        "date": year,
        "description": description,
        "comment": description,
        "genre": "Audiobook",
        "media_type": "2" if kind.tags == "mp4" else None,
    }
