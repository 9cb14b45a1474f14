"""What a player reads from an audio book's container, read the way players read it, not by decoding from the
start: the MP4 boxes (the movie's and each track's duration, the edit list, the packets' timing, both chapter
lists: Nero's ``chpl`` and the QuickTime chapter track Apple's players use), an MP3's Xing/LAME header and ID3
CHAP frames, and ffmpeg seeking to a time the way a player jumps to a chapter.

A small reader of ISO BMFF boxes of our own: there is no ffprobe on these machines, and mutagen reads the Nero
list and the audio track's length but not the chapter track or the edit list."""

from __future__ import annotations

import struct
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from narrator.core import ffmpeg

_CONTAINERS = {b"moov", b"trak", b"mdia", b"minf", b"stbl", b"edts", b"udta", b"tref", b"dinf"}


def _boxes(data: bytes, start: int = 0, end: int | None = None) -> Iterator[tuple[bytes, int, int]]:
    """(type, payload start, payload end) of every box between ``start`` and ``end``."""
    end = len(data) if end is None else end
    at = start
    while at + 8 <= end:
        size, kind = struct.unpack_from(">I4s", data, at)
        header = 8
        if size == 1:
            size = struct.unpack_from(">Q", data, at + 8)[0]
            header = 16
        elif size == 0:
            size = end - at
        if size < header or at + size > end:
            raise ValueError(f"box {kind!r} at {at} runs past its parent")
        yield kind, at + header, at + size
        at += size


def _find(data: bytes, path: list[bytes], start: int = 0, end: int | None = None) -> list[tuple[int, int]]:
    """Every box at ``path`` (a list of types) under ``start``..``end``."""
    found = []
    for kind, begin, stop in _boxes(data, start, end):
        if kind != path[0]:
            continue
        if len(path) == 1:
            found.append((begin, stop))
        elif kind in _CONTAINERS:
            found += _find(data, path[1:], begin, stop)
    return found


def _full_box(data: bytes, at: int) -> tuple[int, int]:
    """(version, payload start after the version and flags)."""
    return data[at], at + 4


@dataclass
class Mp4Track:
    track_id: int
    handler: str  # soun, text, vide...
    timescale: int
    media_duration: int  # mdhd, in the track's timescale
    edits: list[tuple[int, int]]  # (segment duration in the movie's timescale, media time in the track's)
    sample_durations: list[int]  # stts, expanded: one per sample
    sample_sizes: list[int]
    sample_offsets: list[int]  # where each sample's bytes are in the file
    chapter_refs: list[int] = field(default_factory=list)  # tref/chap: the tracks holding this one's chapters

    @property
    def samples_duration(self) -> int:
        return sum(self.sample_durations)

    @property
    def presented(self) -> int:
        """The media samples a player presents, in the track's timescale: what the edit list keeps."""
        if not self.edits:
            return self.samples_duration
        return sum(self.samples_duration - media if duration == 0 else duration for duration, media in self.edits)


@dataclass
class Mp4:
    timescale: int
    duration: int  # mvhd, in the movie's timescale
    tracks: list[Mp4Track]
    data: bytes

    @property
    def seconds(self) -> float:
        return self.duration / self.timescale

    def track(self, handler: str) -> Mp4Track:
        return next(t for t in self.tracks if t.handler == handler)

    def quicktime_chapters(self) -> list[tuple[float, str]]:
        """The chapter track the audio track's ``tref/chap`` names: (start in seconds, title) per sample."""
        audio = self.track("soun")
        assert audio.chapter_refs, "the audio track names no chapter track (tref/chap)"
        text = next(t for t in self.tracks if t.track_id == audio.chapter_refs[0])
        chapters, start = [], 0
        for duration, size, offset in zip(text.sample_durations, text.sample_sizes, text.sample_offsets, strict=True):
            length = struct.unpack_from(">H", self.data, offset)[0]
            assert length + 2 <= size
            chapters.append((start / text.timescale, self.data[offset + 2 : offset + 2 + length].decode("utf-8")))
            start += duration
        return chapters


def read_mp4(path: Path) -> Mp4:
    data = path.read_bytes()
    (moov,) = _find(data, [b"moov"])
    (mvhd,) = _find(data, [b"mvhd"], *moov)
    version, at = _full_box(data, mvhd[0])
    if version == 1:
        timescale, duration = struct.unpack_from(">IQ", data, at + 16)
    else:
        timescale, duration = struct.unpack_from(">II", data, at + 8)
    tracks = [_read_track(data, trak) for trak in _find(data, [b"trak"], *moov)]
    return Mp4(timescale, duration, tracks, data)


def _read_track(data: bytes, trak: tuple[int, int]) -> Mp4Track:
    (tkhd,) = _find(data, [b"tkhd"], *trak)
    version, at = _full_box(data, tkhd[0])
    track_id = struct.unpack_from(">I", data, at + (16 if version == 1 else 8))[0]
    (mdhd,) = _find(data, [b"mdia", b"mdhd"], *trak)
    version, at = _full_box(data, mdhd[0])
    if version == 1:
        timescale, media_duration = struct.unpack_from(">IQ", data, at + 16)
    else:
        timescale, media_duration = struct.unpack_from(">II", data, at + 8)
    (hdlr,) = _find(data, [b"mdia", b"hdlr"], *trak)
    handler = data[hdlr[0] + 8 : hdlr[0] + 12].decode("ascii")
    edits = []
    for elst in _find(data, [b"edts", b"elst"], *trak):
        version, at = _full_box(data, elst[0])
        (count,) = struct.unpack_from(">I", data, at)
        for i in range(count):
            if version == 1:
                duration, media = struct.unpack_from(">Qq", data, at + 4 + 20 * i)
            else:
                duration, media = struct.unpack_from(">Ii", data, at + 4 + 12 * i)
            edits.append((duration, media))
    stbl = _find(data, [b"mdia", b"minf", b"stbl"], *trak)[0]
    (stts,) = _find(data, [b"stts"], *stbl)
    (count,) = struct.unpack_from(">I", data, stts[0] + 4)
    durations: list[int] = []
    for i in range(count):
        n, delta = struct.unpack_from(">II", data, stts[0] + 8 + 8 * i)
        durations += [delta] * n
    (stsz,) = _find(data, [b"stsz"], *stbl)
    uniform, count = struct.unpack_from(">II", data, stsz[0] + 4)
    sizes = [uniform] * count if uniform else list(struct.unpack_from(f">{count}I", data, stsz[0] + 12))
    offsets = _sample_offsets(data, stbl, sizes)
    refs = []
    for chap in _find(data, [b"tref", b"chap"], *trak):
        refs += list(struct.unpack_from(f">{(chap[1] - chap[0]) // 4}I", data, chap[0]))
    return Mp4Track(track_id, handler, timescale, media_duration, edits, durations, sizes, offsets, refs)


def _sample_offsets(data: bytes, stbl: tuple[int, int], sizes: list[int]) -> list[int]:
    chunk_offsets: list[int] = []
    for stco in _find(data, [b"stco"], *stbl):
        (count,) = struct.unpack_from(">I", data, stco[0] + 4)
        chunk_offsets += struct.unpack_from(f">{count}I", data, stco[0] + 8)
    for co64 in _find(data, [b"co64"], *stbl):
        (count,) = struct.unpack_from(">I", data, co64[0] + 4)
        chunk_offsets += struct.unpack_from(f">{count}Q", data, co64[0] + 8)
    (stsc,) = _find(data, [b"stsc"], *stbl)
    (count,) = struct.unpack_from(">I", data, stsc[0] + 4)
    runs = [struct.unpack_from(">III", data, stsc[0] + 8 + 12 * i) for i in range(count)]
    offsets, sample = [], 0
    for chunk, chunk_offset in enumerate(chunk_offsets, start=1):
        per_chunk = next(r[1] for r in reversed(runs) if r[0] <= chunk)
        at = chunk_offset
        for _ in range(per_chunk):
            if sample >= len(sizes):
                break
            offsets.append(at)
            at += sizes[sample]
            sample += 1
    return offsets


@dataclass(frozen=True)
class Packet:
    pts: int
    duration: int


def packets(path: Path) -> tuple[int, list[Packet]]:
    """(the stream's time base denominator, every audio packet's pts and duration) as ffmpeg's demuxer gives them
    to a player (the framecrc muxer lists them without decoding)."""
    command = [ffmpeg.executable(), "-hide_banner", "-loglevel", "error", "-i", str(path), "-map", "0:a",
               "-c", "copy", "-f", "framecrc", "-"]  # fmt: skip
    lines = subprocess.run(command, capture_output=True, text=True, check=True).stdout.splitlines()
    base = next(int(line.split("/")[1]) for line in lines if line.startswith("#tb 0:"))
    rows = [line.split(",") for line in lines if not line.startswith("#")]
    return base, [Packet(int(row[2]), int(row[3])) for row in rows]


def decoded_seconds(path: Path, rate: int, seek: float | None = None, seconds: float | None = None) -> np.ndarray:
    """The audio a player plays: from the start, or from ``seek`` (``-ss`` before the input: the demuxer seeks
    as a player does), ``seconds`` long, as floats in -1..1."""
    head = ["-ss", f"{seek:.6f}"] if seek is not None else []
    tail = ["-t", f"{seconds:.6f}"] if seconds is not None else []
    command = [ffmpeg.executable(), "-hide_banner", "-loglevel", "error", *head, "-i", str(path), *tail,
               "-map", "0:a", "-f", "s16le", "-ac", "1", "-ar", str(rate), "-"]  # fmt: skip
    raw = subprocess.run(command, capture_output=True, check=True).stdout
    return np.frombuffer(raw, dtype="<i2").astype(float) / 32768


def ffmpeg_duration(path: Path) -> float:
    """The duration ffmpeg's demuxer announces (``Duration:`` in its description of the input)."""
    result = subprocess.run([ffmpeg.executable(), "-hide_banner", "-i", str(path)], capture_output=True, text=True)
    line = next(line for line in result.stderr.splitlines() if "Duration:" in line)
    clock = line.split("Duration:")[1].split(",")[0].strip()
    hours, minutes, seconds = clock.split(":")
    return int(hours) * 3600 + int(minutes) * 60 + float(seconds)


@dataclass(frozen=True)
class Mp3Header:
    frames: int  # the Xing/Info header's frame count
    encoder_delay: int  # LAME's: samples the decoder drops at the start...
    padding: int  # ...and at the end
    samples_per_frame: int
    rate: int

    @property
    def samples(self) -> int:
        return self.frames * self.samples_per_frame - self.encoder_delay - self.padding


_MP3_RATES = {3: (44100, 48000, 32000), 2: (22050, 24000, 16000), 0: (11025, 12000, 8000)}


def read_mp3_header(path: Path) -> Mp3Header:
    """The first frame's Xing/Info header and its LAME extension, after the ID3v2 tag: what players read to
    know an MP3's length without scanning it."""
    data = path.read_bytes()
    at = 0
    if data[:3] == b"ID3":
        size = data[6:10]
        at = 10 + ((size[0] << 21) | (size[1] << 14) | (size[2] << 7) | size[3])
    while not (data[at] == 0xFF and data[at + 1] & 0xE0 == 0xE0):
        at += 1
    version = (data[at + 1] >> 3) & 3
    rate = _MP3_RATES[version][(data[at + 2] >> 2) & 3]
    mono = (data[at + 3] >> 6) == 3
    side = (17 if mono else 32) if version == 3 else (9 if mono else 17)
    tag = at + 4 + side
    assert data[tag : tag + 4] in (b"Xing", b"Info"), "no Xing/Info header in the first frame"
    flags = struct.unpack_from(">I", data, tag + 4)[0]
    assert flags & 1, "the Xing header carries no frame count"
    frames = struct.unpack_from(">I", data, tag + 8)[0]
    lame = tag + 12 + (4 if flags & 2 else 0) + (100 if flags & 4 else 0) + (4 if flags & 8 else 0)
    assert data[lame : lame + 4] in (b"LAME", b"Lavc", b"Lavf"), "no LAME extension after the Xing header"
    delay_padding = int.from_bytes(data[lame + 21 : lame + 24], "big")
    return Mp3Header(frames, delay_padding >> 12, delay_padding & 0xFFF, 1152 if version == 3 else 576, rate)


def id3_chapters(path: Path) -> list[tuple[float, float, str]]:
    """ID3 CHAP frames, in the order the table of contents (CTOC) lists them: (start, end, title)."""
    from mutagen.id3 import ID3

    tags = ID3(path)
    chaps = {frame.element_id: frame for frame in tags.getall("CHAP")}
    (toc,) = tags.getall("CTOC")
    listed = []
    for element in toc.child_element_ids:
        chap = chaps[element]
        listed.append((chap.start_time / 1000, chap.end_time / 1000, str(chap.sub_frames["TIT2"])))
    return listed
