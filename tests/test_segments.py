"""The whole-book M4B joined from per-chapter AAC segments by remuxing: decoded, the book is its chapters' own
samples, in place to the sample; markers sit where the chapters begin; joins do not click; and an edit encodes
one chapter's segment again while the book is only remuxed."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest

from devtools.fake_openai import FakeSpeechServer
from narrator.build.assemble import Framing
from narrator.build.segments import FRAME, Segment, encode_segment, join_segments
from narrator.core import ffmpeg
from narrator.core.audio import Audio, atomic_write
from narrator.core.outputkinds import OUTPUT_KINDS
from tests.books import sentence
from tests.conftest import run_cli, write_job
from tests.helpers import read_metadata, wav_bytes

KEY = "sk-test-0123456789abcdefghijklmnop"


def _chapter(seconds: float, rate: int, seed: int) -> np.ndarray:
    """A chapter as assembly writes it: an opening pause, speech-like sound (tones in the voice's range, three
    syllables a second), a closing pause, and whole frames in all (Framing)."""
    rng = np.random.default_rng(seed)
    framing = Framing(FRAME, rate, rate)
    samples = framing.length(round(seconds * rate))
    pcm = np.zeros(samples)
    lead, tail = round(0.5 * rate), round(1.5 * rate)
    sound = np.arange(lead, samples - tail)
    envelope = np.abs(np.sin(np.pi * 3.0 * sound / rate))  # syllables, three a second
    pitches, phases = rng.uniform(150, 3000, 6), rng.uniform(0, 6.3, 6)
    tones = sum(np.sin(2 * np.pi * f * sound / rate + p) for f, p in zip(pitches, phases, strict=True))
    pcm[sound] = 0.05 * envelope * tones
    return (pcm * 32767).astype("<i2")


@pytest.mark.slow
@pytest.mark.parametrize("rate", [24_000, 44_100])
def test_a_joined_book_decodes_to_its_chapters_in_place(tmp_path, rate):
    lengths = [4.3, 7.9, 3.1, 6.6]
    chapters = [_chapter(seconds, rate, seed) for seed, seconds in enumerate(lengths)]
    kind = OUTPUT_KINDS["m4b"]
    segments = []
    for i, pcm in enumerate(chapters):
        wav = tmp_path / f"chapter-{i}.wav"
        atomic_write(wav, wav_bytes(Audio(pcm.tobytes(), rate)))
        dest = tmp_path / f"segment-{i}.aac"
        encode_segment(wav, dest, kind=kind, bitrate="96k", samples=pcm.size, first=i == 0)
        segments.append(Segment(dest, f"Chapter {i + 1}", pcm.size))
    book = tmp_path / "Book.m4b"
    join_segments(segments, book, kind=kind, rate=rate, tags={"title": "Book"}, cover_file=None, work_dir=tmp_path)

    decoded = np.frombuffer(ffmpeg.decode(book, rate).pcm, dtype="<i2").astype(float) / 32768
    expected = np.concatenate(chapters).astype(float) / 32768
    assert decoded.size == expected.size  # the edit list cut the first priming; no padding anywhere
    starts = np.cumsum([0, *(c.size for c in chapters)])
    # every chapter's speech is where its samples say: the residual is the codec's noise, far under the signal
    for i in range(len(chapters)):
        span = slice(starts[i] + round(0.5 * rate), starts[i + 1] - round(1.5 * rate))
        residual = np.sqrt(np.mean((decoded[span] - expected[span]) ** 2))
        signal_level = np.sqrt(np.mean(expected[span] ** 2))
        assert residual < 0.25 * signal_level, (i, residual, signal_level)
        # one frame off would not match: the same measure with the book shifted by a frame fails
        shifted = slice(span.start + FRAME, span.stop + FRAME)
        assert np.sqrt(np.mean((decoded[shifted] - expected[span]) ** 2)) > 0.9 * signal_level
    # joins fall in silence: no click, nothing louder than the codec's noise around them
    for join in starts[1:-1]:
        around = decoded[join - 2 * FRAME : join + 2 * FRAME]
        assert np.abs(around).max() < 0.003
    markers = read_metadata(book)["chapters"]
    assert [m["title"] for m in markers] == [s.title for s in segments]
    for marker, start in zip(markers, starts, strict=False):
        assert abs(marker["start"] - start / rate) < 0.001


def _book(folder, paragraphs):
    chapters = []
    for c in range(3):
        texts = [f"{sentence(c * 10 + p, 9)} {sentence(c * 10 + p + 5, 7)}" for p in range(paragraphs)]
        chapters.append(f"# Part {c + 1}\n\n" + "\n\n".join(texts))
    (folder / "book.md").write_text("\n\n".join(chapters) + "\n", encoding="utf-8")


@pytest.mark.slow
def test_an_edit_encodes_one_segment_and_remuxes_the_book(tmp_path):
    _book(tmp_path, 4)
    with FakeSpeechServer(KEY) as server:
        spec = {"sources": ["book.md"], "title": "Segmented", "voice": {"provider": "openai", "base_url": server.url},
                "output": {"dir": "out", "formats": ["m4b"]}, "cache": "cache"}  # fmt: skip
        job = write_job(tmp_path, spec)
        env = {"OPENAI_API_KEY": KEY}
        first = run_cli("run", str(job), env=env)
        assert first.returncode == 0, first.stderr
        out = tmp_path / "out"
        store = out / ".narrator" / "segments"
        before = {p.name: p.stat().st_mtime_ns for p in store.iterdir()}
        assert len(before) == 3
        report = json.loads((out / "report.json").read_text())
        assert report["stage_runs"]["book_encoding"] == 3 and report["stage_runs"]["remux"] == 1

        again = run_cli("run", str(job), env=env)
        report = json.loads((out / "report.json").read_text())
        assert again.returncode == 0 and report["requests"] == 0 and report["stage_runs"] == {}

        text = (tmp_path / "book.md").read_text(encoding="utf-8")
        edited = text.replace(sentence(12, 9), sentence(12, 9).replace(" ", " very ", 1), 1)
        assert edited != text
        (tmp_path / "book.md").write_text(edited, encoding="utf-8")
        third = run_cli("run", str(job), env=env)
        assert third.returncode == 0, third.stderr
    report = json.loads((out / "report.json").read_text())
    assert report["requests"] <= 2
    # one segment encoded again (the second chapter's), two kept as they were; the book remuxed, not encoded
    assert report["stage_runs"]["book_encoding"] == 1 and report["stage_runs"]["remux"] == 1
    after = {p.name: p.stat().st_mtime_ns for p in store.iterdir()}
    kept = set(before) & set(after)
    assert len(after) == 3 and len(kept) == 2 and all(before[name] == after[name] for name in kept)
    manifest = json.loads((out / "manifest.json").read_text())
    markers = read_metadata(out / "Segmented.m4b")["chapters"]
    for marker, chapter in zip(markers, manifest["chapters"], strict=True):
        assert abs(marker["start"] - chapter["start"]) < 0.001
    decoded = ffmpeg.decode(out / "Segmented.m4b", 24_000)
    assert abs(decoded.duration - sum(c["duration"] for c in manifest["chapters"])) < 0.001
    assert not any(name.endswith(".tmp") for name in os.listdir(out))


def _envelope(pcm: np.ndarray, rate: int) -> np.ndarray:
    frame = rate // 100  # 10 ms
    usable = pcm[: pcm.size // frame * frame].astype(float)
    return np.sqrt(np.mean(usable.reshape(-1, frame) ** 2, axis=1))


@pytest.mark.slow
def test_a_resampled_mastered_book_keeps_every_chapter_in_place(tmp_path):
    """The ACX preset resamples the local voice's 22 050 Hz to 44 100 and adds room tone: decoded, each stretch
    of the M4B between two markers sounds like that chapter's own MP3, at the same place to the 10 ms frame."""
    chapters = [f"# Part {n}\n\n{sentence(n, 9)} {sentence(n + 3, 6)}\n\n{sentence(n + 7, 8)}" for n in range(3)]
    (tmp_path / "book.md").write_text("\n\n".join(chapters) + "\n", encoding="utf-8")
    job = write_job(tmp_path, {"sources": ["book.md"], "title": "Mastered", "cache": "cache",
                               "output": {"dir": "out", "formats": ["m4b", "mp3"], "mastering": "acx"}})  # fmt: skip
    result = run_cli("run", str(job))
    assert result.returncode == 0, result.stderr
    out, rate = tmp_path / "out", 44_100
    book = np.frombuffer(ffmpeg.decode(out / "Mastered.m4b", rate).pcm, dtype="<i2")
    markers = read_metadata(out / "Mastered.m4b")["chapters"]
    files = sorted((out / "chapters").glob("*.mp3"))
    assert len(markers) == len(files) == 3
    assert abs(book.size / rate - markers[-1]["end"]) < 0.01  # the book ends where its last marker does
    for marker, path in zip(markers, files, strict=True):
        own = _envelope(np.frombuffer(ffmpeg.decode(path, rate).pcm, dtype="<i2"), rate)
        start = round(marker["start"] * rate)
        here = _envelope(book[start : start + own.size * (rate // 100)], rate)
        assert abs(here.size - own.size) <= 1, (path.name, here.size, own.size)  # the same length, to 10 ms
        n = min(here.size, own.size)
        lags = range(-20, 21)
        score = [float(np.dot(here[max(0, k) : n + min(0, k)], own[max(0, -k) : n - max(0, k)])) for k in lags]
        assert lags[int(np.argmax(score))] == 0, (path.name, lags[int(np.argmax(score))])


def test_a_segment_gone_from_the_store_is_one_error_naming_it(tmp_path):
    from narrator.core.errors import ToolError

    rate = 24_000
    pcm = _chapter(2.0, rate, 0)
    wav = tmp_path / "chapter.wav"
    atomic_write(wav, wav_bytes(Audio(pcm.tobytes(), rate)))
    kind = OUTPUT_KINDS["m4b"]
    present = tmp_path / "segment-0.aac"
    encode_segment(wav, present, kind=kind, bitrate="64k", samples=pcm.size, first=True)
    gone = tmp_path / "segment-1.aac"
    segments = [Segment(present, "One", pcm.size), Segment(gone, "Two", pcm.size)]
    book = tmp_path / "Book.m4b"
    with pytest.raises(ToolError, match=r"segment-1\.aac"):
        join_segments(segments, book, kind=kind, rate=rate, tags={}, cover_file=None, work_dir=tmp_path)
    assert not book.exists() and not list(tmp_path.glob(".Book.m4b*"))
