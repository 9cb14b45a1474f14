"""The whole-book M4B from one AAC segment per chapter, joined by remuxing: a one-word edit encodes one chapter's
segment again and remuxes the book; nothing else is encoded. Segments are encoded in parallel, each as soon as its
chapter is mastered, and kept between runs under their fingerprint.

AAC codes audio in frames of 1024 samples, and an encoder opens its stream with one frame of priming (the
decoder's delay). For n input samples ffmpeg's encoder writes ceil(n / 1024) + 1 frames (measured), so a segment
whose input is a whole number of frames decodes to exactly its priming frame and its input, with no padding at
its end. Joined, each segment's priming frame takes the place of its chapter's first 1024 samples, which are
silence (assembly opens every chapter with at least one frame of pause and rounds its length up to whole frames:
assemble.Framing); the first segment's priming is cut by the M4B's edit list (the joined stream is read one frame
early). Every chapter then sits in the book exactly where its samples say, and joins fall in silence: decoding a
joined book gives the chapters' own samples to within the codec's noise (tests/test_segments.py measures it).

Segments are ADTS streams, which carry no length: the join must not ask a demuxer for one. ffmpeg's concat
demuxer did, guessed each segment's length from its bitrate, and offset the next segment's packets by the guess:
the demo's M4B claimed 221 s for 146 s of audio (each segment's last packet "lasting" 14-37 s) and its markers
pointed into the wrong chapters. ADTS frames are self-contained, so the segments' bytes are sent one after the
other as one stream, whose packets ffmpeg times by counting frames: continuous by construction. The movie's
timescale is the audio's sample rate: ffmpeg's own choice for a chapter track (1/28 224 000 s) overflows a
sample's 32-bit duration after 76 s, and a book with longer chapters lost its QuickTime chapter list ("Application
provided duration: ... is invalid"); at the sample rate every marker is exact, to the sample, for chapters of up
to 27 hours at 22 050 Hz.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from ..core.audio import atomic_write
from ..core.outputkinds import OutputKind
from .writers import cover_args, encode_atomically, ffmetadata

FRAME = 1024  # samples in an AAC frame
SEGMENT_SUFFIX = {False: ".aac", True: ".m4a"}  # by OutputKind.read_along: an ADTS stream, or a chapter's own file


@dataclass(frozen=True)
class Segment:
    path: Path
    title: str
    samples: int  # the chapter's length at the book's rate: a whole number of frames


def encode_segment(wav: Path, dest: Path, *, kind: OutputKind, bitrate: str, samples: int, first: bool) -> None:
    """One chapter's segment from its mastered WAV of ``samples`` samples (whole frames). A later chapter's
    first frame is left out: its segment's priming frame stands in its place. A read-along book's segment is
    the chapter's own file, whole (the MP4's edit list cuts its priming): a reader plays it alone."""
    if kind.read_along:
        args = ["-i", str(wav), *kind.codec, "-b:a", bitrate, *kind.remux]
        encode_atomically(dest, kind.muxer, args, f"encoding the read-along book's audio {dest.name}")
        return
    head = 0 if first else FRAME
    body = samples - head
    # the exact length whatever the resampler gave (it may be a sample out): padded, then cut
    chain = f"atrim=start_sample={head},asetpts=N/SR/TB,apad=whole_len={body},atrim=end_sample={body}"
    args = ["-i", str(wav), "-af", chain, *kind.codec, "-b:a", bitrate]
    encode_atomically(dest, kind.muxer, args, f"encoding the book's segment {dest.name}")


def join_segments(
    segments: Sequence[Segment],
    dest: Path,
    *,
    kind: OutputKind,
    rate: int,
    tags: dict[str, str | None],
    cover_file: Path | None,
    work_dir: Path,
) -> None:
    """The book: every segment's frames copied in order as one ADTS stream (see above), with a marker per
    chapter, the tags and the cover. Read one frame early: the M4B's edit list cuts the first segment's priming."""
    metadata = work_dir / f"{kind.name}-metadata.txt"
    atomic_write(metadata, ffmetadata([(s.title, s.samples) for s in segments], rate, tags).encode("utf-8"))
    cover_in, cover_map = cover_args(cover_file, 2)
    stream = ["-itsoffset", f"{-FRAME / rate:.9f}", "-f", "aac", "-i", "pipe:0"]  # aac: the ADTS demuxer
    maps = ["-map", "0:a", *cover_map, "-map_metadata", "1", "-map_chapters", "1"]
    timing = ["-movie_timescale", str(rate)]
    args = [*stream, "-i", str(metadata), *cover_in, *maps, "-c:a", "copy", *timing, *kind.remux]
    segment_files = [s.path for s in segments]
    encode_atomically(dest, kind.final_muxer, args, f"writing {dest.name}", stdin=segment_files)


class SegmentStore:
    """Segments kept between runs in the output folder's scratch space, one file per fingerprint."""

    def __init__(self, root: Path):
        self.root = root

    def path(self, fingerprint: str, kind: OutputKind) -> Path:
        return self.root / f"{fingerprint}{SEGMENT_SUFFIX[kind.read_along]}"

    def has(self, fingerprint: str, kind: OutputKind) -> bool:
        return self.path(fingerprint, kind).is_file()

    def keep_only(self, fingerprints: set[str]) -> None:
        """Delete the segments no planned book holds any more (an edited chapter's old segment)."""
        if not self.root.is_dir():
            return
        for path in self.root.iterdir():
            if path.suffix in SEGMENT_SUFFIX.values() and path.stem not in fingerprints:
                with contextlib.suppress(OSError):
                    os.unlink(path)
