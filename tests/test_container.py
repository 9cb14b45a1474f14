"""Books as a listener's player sees them: what the container says (its length, both chapter lists of an M4B,
an MP3's Xing/LAME header and ID3 chapters), that its packets run on without a gap, and that seeking to a chapter
marker, as a player jumps to a chapter, plays that chapter's first take. Nothing here decodes from the start and
trusts it: the stretched M4B of the old join decoded perfectly and lied about everything else."""

from __future__ import annotations

import itertools
import json
from pathlib import Path

import numpy as np
import pytest
from mutagen.mp4 import MP4

from devtools.fake_openai import FakeSpeechServer, speech_like
from tests.books import sentence
from tests.conftest import REPO, run_cli, write_job
from tests.container import (
    decoded_seconds,
    ffmpeg_duration,
    id3_chapters,
    packets,
    read_mp3_header,
    read_mp4,
)

pytestmark = pytest.mark.slow  # each over half a second: `pytest -m 'not slow'` leaves them out

KEY = "sk-test-0123456789abcdefghijklmnop"
AAC_FRAME = 1024


def best_match(window: np.ndarray, reference: np.ndarray, lags: range) -> tuple[float, int]:
    """(normalised correlation, lag) of ``reference`` best found in ``window`` at one of ``lags`` (samples)."""
    best = (-1.0, 0)
    ref = reference - reference.mean()
    for lag in lags:
        piece = window[max(lag, 0) : max(lag, 0) + ref.size]
        if piece.size < ref.size:
            break
        piece = piece - piece.mean()
        denominator = np.linalg.norm(piece) * np.linalg.norm(ref)
        score = float(piece @ ref / denominator) if denominator else 0.0
        best = max(best, (score, lag))
    return best


def envelope(signal: np.ndarray, block: int = 32) -> np.ndarray:
    """The signal's loudness in blocks of ``block`` samples: what a codec keeps of speech, where its waveform's
    fine phase differs between AAC and MP3 (raw correlation of the local voice across the two: 0.78-0.91)."""
    usable = signal[: signal.size - signal.size % block].reshape(-1, block)
    return np.sqrt(np.mean(usable**2, axis=1))


def check_m4b(path: Path, chapters: list[dict], rate: int) -> None:
    """The M4B's container against its audio and the manifest's chapters: lengths, packets, both chapter
    lists, titles, order."""
    book = read_mp4(path)
    audio = book.track("soun")
    decoded = decoded_seconds(path, rate).size
    frames = len(chapters)
    # the movie, the audio track's presentation (edit list) and ffmpeg all say what the audio really lasts
    assert abs(book.duration * rate / book.timescale - decoded) <= AAC_FRAME * frames, (book.seconds, decoded / rate)
    presented = sum(duration for duration, _ in audio.edits) * rate / book.timescale
    assert abs(presented - decoded) <= AAC_FRAME * frames
    assert abs(ffmpeg_duration(path) - decoded / rate) < 0.02
    assert abs(MP4(path).info.length - decoded / rate) <= AAC_FRAME * frames / rate
    expected_samples = round(sum(c["duration"] for c in chapters) * rate)
    assert abs(decoded - expected_samples) <= frames + 2 * rate / 10_000  # the manifest rounds to 0.1 ms
    # packets run on: each starts where the one before ended, none lasts more than a frame
    base, listed = packets(path)
    assert base == rate
    for before, after in itertools.pairwise(listed):
        assert after.pts == before.pts + before.duration, (before, after)
    assert all(p.duration == AAC_FRAME for p in listed[:-1])
    # both chapter lists: Nero's chpl (mutagen reads it) and the QuickTime chapter track (Apple's players)
    starts = [c["start"] for c in chapters]
    titles = [c["title"] for c in chapters]
    nero = MP4(path).chapters
    assert nero is not None
    assert [c.title for c in nero] == titles
    assert all(abs(c.start - s) < 0.001 for c, s in zip(nero, starts, strict=True))
    quicktime = book.quicktime_chapters()
    assert [title for _, title in quicktime] == titles
    assert all(abs(t - s) < 0.001 for (t, _), s in zip(quicktime, starts, strict=True))


def check_mp3(path: Path, seconds: float, titles: list[str] | None, starts: list[float] | None) -> None:
    """An MP3's Xing/LAME header gives its exact length (what players show and seek by); its ID3 chapters, when
    it has them, are ordered, titled and where the chapters begin."""
    header = read_mp3_header(path)
    decoded = decoded_seconds(path, header.rate).size
    assert header.samples == decoded, (header, decoded)
    assert abs(decoded / header.rate - seconds) <= 1152 / header.rate, (path.name, decoded / header.rate, seconds)
    if titles is not None and starts is not None:
        chaps = id3_chapters(path)
        assert [title for _, _, title in chaps] == titles
        assert all(abs(start - s) < 0.002 for (start, _, _), s in zip(chaps, starts, strict=True))
        assert all(abs(end - next_start) < 0.002 for (_, end, _), (next_start, _, _) in itertools.pairwise(chaps))
        assert abs(chaps[-1][1] - decoded / header.rate) < 0.002


def check_seeks(
    path: Path, chapters: list[dict], rate: int, first_sound: list[np.ndarray], by_envelope: bool = False
) -> None:
    """Seeking to each chapter marker (``-ss`` before the input, as a player seeks) plays that chapter's first
    take: ``first_sound[i]`` is found where the manifest puts it, and no other chapter's is a better match."""
    for i, chapter in enumerate(chapters):
        window = decoded_seconds(path, rate, seek=chapter["start"], seconds=6.0)
        # ffmpeg seeking to a time at (or just after) an AAC frame's start plays from the next frame: a plain
        # M4A encoded by ffmpeg in one go does the same (measured: 1024 samples late, every time). So a player
        # lands within a frame of the marker, and the M4B's marker is judged with that frame's grace.
        expected = round(chapter["first_offset"] * rate)
        grace = AAC_FRAME + round(0.03 * rate)
        if by_envelope:
            block = 32
            lags = range(max(0, expected - grace) // block, (expected + grace) // block + 1)
            scores = [best_match(envelope(window, block), envelope(sound, block), lags) for sound in first_sound]
        else:
            lags = range(max(0, expected - grace), expected + grace, 4)
            scores = [best_match(window, sound, lags) for sound in first_sound]
        score, lag = scores[i]
        assert score > 0.8, (path.name, chapter["title"], scores)
        assert max(s for j, (s, _) in enumerate(scores) if j != i) < score - 0.2, (chapter["title"], scores)


def chapters_of(out: Path) -> list[dict]:
    manifest = json.loads((out / "manifest.json").read_text(encoding="utf-8"))
    chapters = manifest["chapters"]
    for chapter in chapters:
        first = next(c for c in manifest["chunks"] if c["chapter"] == chapter["number"])
        chapter["first_offset"] = first["offset"]
        chapter["first_text"] = first["text"]
    return chapters


@pytest.mark.slow
def test_the_demo_book_as_players_read_it(tmp_path):
    job = tmp_path / "demo.yaml"
    text = (REPO / "pipelines" / "demo.yaml").read_text(encoding="utf-8")
    text = text.replace("../samples/", f"{REPO}/samples/").replace("../out/lighthouse", "out")
    job.write_text(text.replace("../.narrator-cache", "cache"), encoding="utf-8")
    result = run_cli("run", str(job))
    assert result.returncode == 0, result.stderr
    out = tmp_path / "out"
    chapters = chapters_of(out)
    rate = 22_050
    m4b = out / "The Lighthouse Keeper.m4b"
    check_m4b(m4b, chapters, rate)
    files = sorted((out / "chapters").glob("*.mp3"))
    assert len(files) == len(chapters)
    for path, chapter in zip(files, chapters, strict=True):
        check_mp3(path, chapter["duration"], None, None)
    # a chapter's first take, as its own MP3 opens: what seeking to its marker in the M4B must play
    openings = [decoded_seconds(p, rate, seconds=4.0) for p in files]
    firsts = [o[round(c["first_offset"] * rate) :] for o, c in zip(openings, chapters, strict=True)]
    check_seeks(m4b, chapters, rate, firsts, by_envelope=True)


def _long_book(folder: Path, minutes: list[float]) -> None:
    """A Markdown book whose chapters last about ``minutes`` each through the fake voice (15 characters a
    second); every chapter opens with a heading that names it, so each chapter's first take sounds different."""
    parts = []
    for c, length in enumerate(minutes):
        paragraphs, chars, p = [], 0, 0
        while chars < length * 60 * 15:
            paragraphs.append(" ".join(sentence(c * 1000 + p * 7 + s, 8 + s) for s in range(6)))
            chars += len(paragraphs[-1])
            p += 1
        parts.append(f"# {sentence(c * 31 + 3, 6)[:-1]}\n\n" + "\n\n".join(paragraphs))
    (folder / "book.md").write_text("\n\n".join(parts) + "\n", encoding="utf-8")


def _write_fake_job(folder: Path, server: FakeSpeechServer, formats: list[str]) -> Path:
    spec = {"sources": ["book.md"], "title": "Long Book", "author": "A. Writer",
            "voice": {"provider": "openai", "base_url": server.url},
            "output": {"dir": "out", "formats": formats}, "cache": "cache", "concurrency": 8}  # fmt: skip
    return write_job(folder, spec)


def _run(job: Path) -> list[dict]:
    result = run_cli("run", str(job), env={"OPENAI_API_KEY": KEY}, timeout=900)
    assert result.returncode == 0, result.stderr
    return chapters_of(job.parent / "out")


def _check_fake_book(out: Path, chapters: list[dict], rate: int = 24_000) -> None:
    titles = [c["title"] for c in chapters]
    starts = [c["start"] for c in chapters]
    total = sum(c["duration"] for c in chapters)
    m4b, book_mp3 = out / "Long Book.m4b", out / "Long Book.mp3"
    check_m4b(m4b, chapters, rate)
    check_mp3(book_mp3, total, titles, starts)
    files = sorted((out / "chapters").glob("*.mp3"))
    for path, chapter in zip(files, chapters, strict=True):
        check_mp3(path, chapter["duration"], None, None)
    # the fake speaks each word as a tone of its own pitch: a chapter's heading, spoken, identifies its first take
    firsts = [np.frombuffer(speech_like(c["first_text"]), dtype="<i2").astype(float) / 32768 for c in chapters]
    check_seeks(m4b, chapters, rate, firsts)
    check_seeks(book_mp3, chapters, rate, firsts)


@pytest.mark.slow
def test_a_book_of_long_chapters_and_an_edit(tmp_path):
    minutes = [1.8, 7.2, 3.2, 5.4, 2.2]  # pauses lengthen them: 2 to 8 minutes
    _long_book(tmp_path, minutes)
    out = tmp_path / "out"
    with FakeSpeechServer(KEY) as server:
        job = _write_fake_job(tmp_path, server, ["m4b", "mp3", "mp3-book"])
        chapters = _run(job)
        durations = [c["duration"] / 60 for c in chapters]
        assert min(durations) >= 1.9 and 7.5 <= max(durations) <= 8.5, durations
        _check_fake_book(out, chapters)

        # a one-word edit in the third chapter: its segment is encoded again, the M4B remuxed, and still true
        book = tmp_path / "book.md"
        text = book.read_text(encoding="utf-8")
        third = text.index("\n# ", text.index("\n# ") + 1)
        cut = text.index(". ", third) + 2
        book.write_text(text[:cut] + "Lantern " + text[cut:], encoding="utf-8")
        store = out / ".narrator" / "segments"
        before = {p.name for p in store.iterdir()}
        edited = _run(job)
    report = json.loads((out / "report.json").read_text(encoding="utf-8"))
    # one chapter MP3 and one M4B segment encoded again, the M4B remuxed (the book MP3 is one encode: all again)
    assert report["stage_runs"]["encoding"] == 1 and report["stage_runs"]["remux"] == 1, report["stage_runs"]
    assert len({p.name for p in store.iterdir()} - before) == 1
    assert edited[2]["duration"] > chapters[2]["duration"]
    assert [c["duration"] for i, c in enumerate(edited) if i != 2] == [
        c["duration"] for i, c in enumerate(chapters) if i != 2
    ]
    _check_fake_book(out, edited)


@pytest.mark.slow
def test_a_book_of_over_two_hours(tmp_path):
    # 27 chapters of 1 to 9 minutes: 2 h 8 min
    minutes = [1.0 + (i * 5) % 9 for i in range(27)]
    assert sum(minutes) > 125
    _long_book(tmp_path, minutes)
    with FakeSpeechServer(KEY) as server:
        chapters = _run(_write_fake_job(tmp_path, server, ["m4b", "mp3-book"]))
    out = tmp_path / "out"
    total = sum(c["duration"] for c in chapters)
    assert total > 2 * 3600
    titles = [c["title"] for c in chapters]
    starts = [c["start"] for c in chapters]
    check_m4b(out / "Long Book.m4b", chapters, 24_000)
    check_mp3(out / "Long Book.mp3", total, titles, starts)
    firsts = [np.frombuffer(speech_like(c["first_text"]), dtype="<i2").astype(float) / 32768 for c in chapters]
    check_seeks(out / "Long Book.m4b", chapters, 24_000, firsts)
    check_seeks(out / "Long Book.mp3", chapters, 24_000, firsts)
