"""Per chapter: trim each take's own leading and trailing silence, then join the takes with the job's
pauses in one pass. One take is in memory at a time; each chapter becomes a WAV for the writers."""

from __future__ import annotations

import itertools
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..core.audio import SAMPLE_WIDTH, Audio, atomic_wav, frame_energy, silence
from ..job.spec import PauseSpec
from ..text.chunker import Chunk, spoken_sentences

SILENCE_THRESHOLD_DBFS = -50.0
TRIM_MARGIN_MS = 30
QA_RATIO = (0.6, 1.6)  # a take's duration against the estimate from its text
QA_MAX_SILENCE = 2.0  # seconds of silence inside a take
PAUSE_MIN = 0.12  # seconds: a quiet run at least this long may be the pause between two sentences


@dataclass(frozen=True)
class Placement:
    chunk_id: str
    offset: float  # seconds from the start of the chapter file
    duration: float  # seconds of the trimmed take
    flags: tuple[str, ...] = ()  # quality flags for a reviewer (see quality_flags)
    onsets: tuple[float, ...] = ()  # seconds into the take where its second, third... sentence begins


@dataclass(frozen=True)
class ChapterAudio:
    index: int
    title: str
    wav: Path
    samples: int
    rate: int
    placements: tuple[Placement, ...]
    gain: float | None = None  # dB to the mastering preset's target; None: not to be mastered (or already is)

    @property
    def duration(self) -> float:
        return self.samples / self.rate


@dataclass(frozen=True)
class Framing:
    """Chapters in whole codec frames at the book's rate, so a book can be joined from per-chapter segments
    (segments.py): a chapter opens with at least one frame of pause, and its closing pause is lengthened to the
    next whole frame (under 47 ms at 22 050 Hz). Assembly writes at ``rate``; the book is at ``book_rate``."""

    frame: int
    rate: int
    book_rate: int

    @property
    def lead(self) -> float:
        """The shortest opening pause, in seconds: a frame and 2 ms (a resampler may smear a sample or two)."""
        return self.frame / self.book_rate + 0.002

    def length(self, samples: int) -> int:
        """The smallest chapter length, not under ``samples`` (at ``rate``), that is whole frames at the book's
        rate once resampled (mastering.py rounds the resampled length)."""
        while round(samples * self.book_rate / self.rate) % self.frame:
            samples += 1
        return samples


def gap_seconds(chunk: Chunk, pauses: PauseSpec) -> float:
    return {
        "chapter_start": pauses.chapter_start,
        "after_heading": pauses.after_heading,
        "paragraph": pauses.paragraph,
        "chunk": pauses.chunk,
        "scene_break": pauses.scene_break,
        # where another speaker takes over inside a paragraph (a quotation and its tag): the pause between two
        # pieces of a paragraph, which a reader makes at a comma anyway
        "speaker": pauses.chunk,
    }[chunk.gap]


def quiet_frames(energy: np.ndarray) -> np.ndarray:
    """Which frames (mean squares, as frame_energy gives them) are under SILENCE_THRESHOLD_DBFS."""
    return energy < (32768 * 10 ** (SILENCE_THRESHOLD_DBFS / 20)) ** 2


def trim(audio: Audio, rate: int) -> bytes:
    """The take without its own leading and trailing silence (5 ms frames under -50 dBFS, as pydub's
    detect_leading_silence judges them), at the book's rate."""
    pcm = audio.pcm
    if audio.rate != rate:
        with warnings.catch_warnings():  # pydub looks for ffmpeg on PATH when imported; resampling needs none
            warnings.simplefilter("ignore", RuntimeWarning)
            from pydub import AudioSegment
        segment = AudioSegment(data=pcm, sample_width=SAMPLE_WIDTH, frame_rate=audio.rate, channels=1)
        pcm = segment.set_frame_rate(rate).raw_data
    frame = max(1, rate // 200)
    loud = np.flatnonzero(~quiet_frames(frame_energy(pcm, frame)))
    if not loud.size:  # all silence: keep nothing rather than a click
        return b""
    samples = len(pcm) // SAMPLE_WIDTH
    margin = rate * TRIM_MARGIN_MS // 1000  # keep a little of the edge so soft consonants are not clipped
    start = max(0, loud[0] * frame - margin)
    end = min(samples, (loud[-1] + 1) * frame + margin)
    return pcm[start * SAMPLE_WIDTH : end * SAMPLE_WIDTH]


def _quiet_runs(quiet: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Start and end (exclusive) frame of each run of quiet frames."""
    edges = np.diff(np.concatenate(([0], quiet.astype(np.int8), [0])))
    return np.flatnonzero(edges == 1), np.flatnonzero(edges == -1)


def quality_flags(pcm: bytes, rate: int, expected_seconds: float, energy: np.ndarray | None = None) -> tuple[str, ...]:
    """What a reviewer should listen to: a take far from its expected length (cut short, or runaway
    generation), a long silence inside it, or clipping. Flags never stop a run. ``energy``: the take's
    10 ms frame energies, if already known."""
    samples = np.frombuffer(pcm, dtype="<i2")
    flags: list[str] = []
    duration = len(samples) / rate
    if expected_seconds >= 1.0 and not QA_RATIO[0] <= duration / expected_seconds <= QA_RATIO[1]:
        flags.append(
            f"duration {duration:.1f}s is {duration / expected_seconds:.2f}x the {expected_seconds:.1f}s expected"
        )
    quiet = quiet_frames(frame_energy(pcm, rate // 100) if energy is None else energy)  # 10 ms frames
    if quiet.size:
        starts, ends = _quiet_runs(quiet)
        if starts.size:
            longest = int(np.argmax(ends - starts))
            seconds = (ends[longest] - starts[longest]) * 0.01
            if seconds > QA_MAX_SILENCE:
                flags.append(f"silence of {seconds:.1f}s at {starts[longest] * 0.01:.1f}s")
    clipped = int(np.count_nonzero(samples == 32767) + np.count_nonzero(samples == -32768))
    if clipped >= 2:
        flags.append(f"clipping: {clipped} samples at full scale")
    return tuple(flags)


@dataclass(frozen=True)
class Seam:
    """Where one part of a take ends and the next begins (seconds into the take): a pause heard in the sound
    (``start`` to ``end``), or, where none was near, the proportional estimate (``start == end``)."""

    start: float
    end: float
    heard: bool


def find_seams(lengths: Sequence[int], energy: np.ndarray, frame_seconds: float) -> list[Seam]:
    """Where each part after the first begins in a take, for parts of ``lengths`` characters (sentences for
    subtitles, paragraphs of a grouped take). Parts share the take in proportion; then each boundary moves to the
    longest pause (PAUSE_MIN or more, quiet against the take's own level) that lies within half a part of it:
    a voice pauses longer between sentences than between words, and longer between paragraphs than sentences.
    Where no pause is near, the proportional estimate stands."""
    if len(lengths) < 2:
        return []
    duration = energy.size * frame_seconds
    total = sum(lengths) or 1
    estimates = [duration * done / total for done in itertools.accumulate(lengths[:-1])]
    begins, resumes, pauses = _pauses(energy, frame_seconds)
    seams: list[Seam] = []
    for k, estimate in enumerate(estimates):
        reach = 0.5 * duration * min(lengths[k], lengths[k + 1]) / total
        floor = seams[-1].end if seams else 0.0
        # how far the estimate lies from each pause (0 inside it): a short part (a heading) is hard to estimate,
        # but the voice's pause after it still holds the estimate, or lies close by
        distance = np.maximum(0.0, np.maximum(begins - estimate, estimate - resumes))
        near = (resumes > floor) & (distance <= reach)
        if near.any():
            best = int(np.argmax(np.where(near, pauses, -1.0)))
            seams.append(Seam(float(begins[best]), float(resumes[best]), True))
        else:
            at = max(estimate, floor)
            seams.append(Seam(at, at, False))
    return seams


SKIP_COST = 2.0  # a seam at its estimate, no pause heard: as dear as a pause 1.4 reaches away
LENGTH_WEIGHT = 0.5  # a longer pause is likelier a sentence's end than a comma's


def aligned_seams(lengths: Sequence[int], energy: np.ndarray, frame_seconds: float) -> list[Seam]:
    """Where each part after the first begins, all seams placed together: each at a pause, in order, the set that
    lies nearest the proportional estimates overall (a seam costs the square of its distance from its estimate, in
    reaches as find_seams measures them, less a little for a longer pause; a seam may stay at its estimate, at a
    price). find_seams, seam by seam, gave a sentence the next one's start when the voice read the sentence before
    it faster than its share: 2 of 84 clips of the local voice held the wrong sentence; placed together, none did."""
    if len(lengths) < 2:
        return []
    duration = energy.size * frame_seconds
    total = sum(lengths) or 1
    estimates = [duration * done / total for done in itertools.accumulate(lengths[:-1])]
    reaches = [max(1e-3, 0.5 * duration * min(a, b) / total) for a, b in itertools.pairwise(lengths)]
    begins, resumes, pauses = _pauses(energy, frame_seconds)
    longest = float(pauses.max()) if pauses.size else 1.0
    # best[j]: the cheapest placing of the seams so far whose last pause is j (-1: none yet); back: how it came
    best: dict[int, float] = {-1: 0.0}
    back: list[dict[int, tuple[int, int | None]]] = []
    for estimate, reach in zip(estimates, reaches, strict=True):
        distance = np.maximum(0.0, np.maximum(begins - estimate, estimate - resumes)) / reach
        near = [int(j) for j in np.flatnonzero(distance <= 3.0)]
        step: dict[int, float] = {}
        came: dict[int, tuple[int, int | None]] = {}
        for last, cost in best.items():
            if cost + SKIP_COST < step.get(last, np.inf):  # at its estimate: the last pause stays the last
                step[last], came[last] = cost + SKIP_COST, (last, None)
            for j in near:
                if j > last:
                    c = cost + float(distance[j]) ** 2 - LENGTH_WEIGHT * float(pauses[j]) / longest
                    if c < step.get(j, np.inf):
                        step[j], came[j] = c, (last, j)
        best = step
        back.append(came)
    state = min(best, key=lambda j: best[j])
    chosen: list[int | None] = []
    for came in reversed(back):
        state, pause = came[state]
        chosen.append(pause)
    seams: list[Seam] = []
    for estimate, pause in zip(estimates, reversed(chosen), strict=True):
        if pause is None:
            at = max(estimate, seams[-1].end if seams else 0.0)
            seams.append(Seam(at, at, False))
        else:
            seams.append(Seam(float(begins[pause]), float(resumes[pause]), True))
    return seams


def _pauses(energy: np.ndarray, frame_seconds: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Each pause inside a take (PAUSE_MIN or more, quiet against the take's own level): its start, its end, its
    length, in seconds. Quiet: under -50 dBFS, or 30 dB under the take's loud frames (breaths and room noise are
    not speech). A pause ends where the next sound starts: after its last frame under -50 dBFS, where it has one
    (a soft onset, 30 dB under the take's level but heard, is the next sentence's; placed at the relative run's
    end instead, 2 of 84 clips of the local voice began 10-40 ms after their sentence's first sound)."""
    loud = float(np.percentile(energy, 90)) if energy.size else 0.0
    silent = quiet_frames(energy)
    starts, ends = _quiet_runs((energy < loud * 10 ** (-30 / 10)) | silent)
    pauses = (ends - starts) * frame_seconds
    inner = (starts > 0) & (ends < energy.size) & (pauses >= PAUSE_MIN)
    starts, ends, pauses = starts[inner], ends[inner], pauses[inner]
    last_silent = np.maximum.accumulate(np.where(silent, np.arange(energy.size), -1))
    if ends.size:
        ends = np.where(last_silent[ends - 1] >= starts, last_silent[ends - 1] + 1, ends)
    return starts * frame_seconds, ends * frame_seconds, pauses


def sentence_onsets(lengths: Sequence[int], energy: np.ndarray, frame_seconds: float) -> tuple[float, ...]:
    """Where each sentence after the first begins in a take (seconds), for subtitles and the read-along book."""
    return tuple(seam.end for seam in aligned_seams(lengths, energy, frame_seconds))


def take_parts(group: Sequence[Chunk], body: bytes, rate: int) -> list[tuple[Chunk, bytes, bool]]:
    """A take's audio cut into its chunks: (chunk, its sound, whether its gap of silence goes before it). A
    grouped take is cut in the pause found at each paragraph seam (keeping TRIM_MARGIN_MS of it either side), so
    assembly sets the silence there from the job's pauses; where no pause was heard near a seam, the sound runs on
    uncut (never cut into speech) and only the placement is estimated."""
    if len(group) == 1:
        return [(group[0], body, True)]
    seams = find_seams([len(c.spoken) for c in group], frame_energy(body, rate // 100), 0.01)
    margin = TRIM_MARGIN_MS / 1000
    samples = len(body) // SAMPLE_WIDTH
    parts: list[tuple[Chunk, bytes, bool]] = []
    begin, silent = 0, True
    for chunk, seam in zip(group, seams, strict=False):
        if seam.heard and seam.end - seam.start > 2 * margin:
            end, resume = seam.start + margin, seam.end - margin
        else:
            end = resume = (seam.start + seam.end) / 2
        stop = min(samples, max(begin, round(end * rate)))
        parts.append((chunk, body[begin * SAMPLE_WIDTH : stop * SAMPLE_WIDTH], silent))
        begin, silent = min(samples, max(stop, round(resume * rate))), seam.heard
    parts.append((group[-1], body[begin * SAMPLE_WIDTH :], silent))
    return parts


def assemble_chapter(
    index: int,
    title: str,
    takes: Sequence[Sequence[Chunk]],
    load_take: Callable[[Chunk], Audio],
    pauses: PauseSpec,
    rate: int,
    wav_path: Path,
    estimate: Callable[[Chunk], float] = lambda chunk: 0.0,
    tap: Callable[[bytes], None] | None = None,
    framing: Framing | None = None,
) -> ChapterAudio:
    """``takes``: the chapter's chunks, grouped as they were requested (one chunk each when not grouped).
    Streams: one take in memory at a time, whatever the chapter's length. ``tap`` sees every piece of PCM
    written, in order (a loudness meter, say). ``framing``: the chapter's length in whole frames of the book."""
    placements: list[Placement] = []
    with atomic_wav(wav_path, rate) as out:

        def write(pcm: bytes) -> None:
            out.write(pcm)
            if tap is not None:
                tap(pcm)

        for group in takes:
            body = trim(load_take(group[0]), rate)
            # a grouped take is judged whole too: a runaway's long silence may be taken for a seam and cut away
            whole = quality_flags(body, rate, sum(map(estimate, group))) if len(group) > 1 else ()
            for chunk, part, silent in take_parts(group, body, rate):
                if silent:
                    gap = gap_seconds(chunk, pauses)
                    write(silence(max(gap, framing.lead) if framing and not placements else gap, rate))
                start = out.samples
                write(part)
                energy = frame_energy(part, rate // 100)  # 10 ms frames
                flags = (*quality_flags(part, rate, estimate(chunk), energy), *(f"take: {f}" for f in whole))
                onsets = sentence_onsets([len(s) for s in spoken_sentences(chunk.spoken)], energy, 0.01)
                placements.append(Placement(chunk.id, start / rate, (out.samples - start) / rate, flags, onsets))
        end = out.samples + round(pauses.chapter_end * rate)
        write(bytes(SAMPLE_WIDTH * ((framing.length(end) if framing else end) - out.samples)))
        samples = out.samples
    return ChapterAudio(index, title, wav_path, samples, rate, tuple(placements))
