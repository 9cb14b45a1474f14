"""Audiobook-grade output: mastering presets, subtitles, tags and chunk QA, measured on the real files."""

from __future__ import annotations

import base64
import itertools
import json
import re
import subprocess
from pathlib import Path

import numpy as np
import pytest
from mutagen.id3 import ID3
from mutagen.mp3 import MP3
from mutagen.mp4 import MP4

from devtools.fake_openai import FakeSpeechServer, Faults, speech_like
from devtools.picture import lighthouse_cover
from narrator.build.assemble import quality_flags, sentence_onsets
from narrator.core import ffmpeg
from narrator.core.audio import frame_energy
from tests.books import sentence
from tests.conftest import run_cli, write_job
from tests.helpers import read_metadata

KEY = "sk-test-audiobook"


def build(folder: Path, output: dict, faults: Faults | None = None, **extra) -> tuple[Path, dict, dict]:
    chapters = []
    for c in range(3):
        paras = [f"Chapter part {c}-{i}. {sentence(c * 10 + i)} {sentence(c * 10 + i + 40, 6)}" for i in range(4)]
        chapters.append(f"# Chapter {c + 1}\n\n" + "\n\n".join(paras))
    if not (folder / "book.md").exists():  # a test may have edited it since the last build
        (folder / "book.md").write_text("\n\n".join(chapters) + "\n", encoding="utf-8")
    with FakeSpeechServer(KEY, faults or Faults()) as server:
        spec = {"title": "Measured Book", "author": "Ann Author", "narrator": "Fake Voice", "year": "2026",
                "description": "A book for measuring.", "sources": ["book.md"],
                "voice": {"provider": "openai", "base_url": server.url}, "output": {"dir": "out", **output},
                "cache": "cache", **extra}  # fmt: skip
        result = run_cli("run", str(write_job(folder, spec)), env={"OPENAI_API_KEY": KEY})
    assert result.returncode == 0, result.stderr
    out = folder / "out"
    return out, json.loads((out / "report.json").read_text()), json.loads((out / "manifest.json").read_text())


def astats(path: Path) -> dict[str, float]:
    """ffmpeg's own measurement, independent of narrator's."""
    err = subprocess.run(
        [ffmpeg.executable(), "-hide_banner", "-i", str(path), "-af", "astats=measure_perchannel=none",
         "-f", "null", "-"],
        capture_output=True, text=True, check=True,
    ).stderr  # fmt: skip
    overall = err[err.rfind("Overall") :]
    return {
        "rms": float(re.search(r"RMS level dB: (-?[\d.]+)", overall).group(1)),
        "peak": float(re.search(r"Peak level dB: (-?[\d.]+)", overall).group(1)),
    }


def ebur128(path: Path) -> tuple[float, float]:
    err = subprocess.run(
        [ffmpeg.executable(), "-hide_banner", "-i", str(path), "-af", "ebur128=peak=true", "-f", "null", "-"],
        capture_output=True, text=True, check=True,
    ).stderr  # fmt: skip
    summary = err[err.rfind("Summary:") :]
    return float(re.search(r"I:\s+(-?[\d.]+) LUFS", summary).group(1)), float(
        re.search(r"Peak:\s+(-?[\d.]+) dBFS", summary).group(1)
    )


@pytest.mark.slow
def test_acx_preset_passes_every_rule_as_ffmpeg_measures_it(tmp_path):
    (tmp_path / "cover.png").write_bytes(lighthouse_cover(60, 90))  # a picture stream beside the mastering graph
    out, report, _ = build(tmp_path, {"formats": ["mp3"], "mastering": "acx"}, cover="cover.png")
    assert report["qa"]["preset"] == "acx" and report["qa"]["pass"], report["qa"]
    mp3s = sorted((out / "chapters").glob("*.mp3"))
    assert len(mp3s) == 3 and len(report["qa"]["files"]) == 3
    for path in mp3s:
        stats = astats(path)
        assert -23 <= stats["rms"] <= -18 and stats["peak"] <= -3.0, (path.name, stats)
        decoded = ffmpeg.decode(path, 44_100)
        samples = np.frombuffer(decoded.pcm, dtype="<i2").astype(np.float32)
        frames = samples[: samples.size // 441 * 441].reshape(-1, 441)
        loud = np.flatnonzero(np.sqrt((frames**2).mean(axis=1)) > 32768 * 10 ** (-50 / 20))
        head, tail = loud[0] * 0.01, (frames.shape[0] - 1 - loud[-1]) * 0.01
        assert 0.5 <= head <= 1.0 and 1.0 <= tail <= 5.0, (path.name, head, tail)
        windows = (frames**2).mean(axis=1)[: frames.shape[0] // 50 * 50].reshape(-1, 50).mean(axis=1)
        floor = 20 * np.log10(max(np.sqrt(windows.min()), 1e-9) / 32768)
        assert -90 <= floor <= -60, (path.name, floor)  # room tone under ACX's ceiling, not digital silence
        info = MP3(path).info
        assert info.sample_rate == 44_100 and info.bitrate == 192_000
        assert ID3(path).getall("APIC")


@pytest.mark.slow
def test_podcast_preset_hits_its_loudness_target(tmp_path):
    out, report, _ = build(tmp_path, {"formats": ["m4b", "mp3"], "mastering": "podcast"})
    assert report["qa"]["pass"], report["qa"]
    for path in [*sorted((out / "chapters").glob("*.mp3")), out / "Measured Book.m4b"]:
        integrated, true_peak = ebur128(path)
        assert -17 <= integrated <= -15 and true_peak <= -1.0, (path.name, integrated, true_peak)


@pytest.mark.slow
def test_subtitles_cover_every_sentence_in_order_on_the_book_timeline(tmp_path):
    out, _, manifest = build(tmp_path, {"formats": ["m4b", "srt", "vtt"]})
    spoken = " ".join(c["text"] for c in manifest["chunks"]).split()
    parsed = _srt_cues((out / "Measured Book.srt").read_text())
    cues = [" ".join(lines) for _, _, lines in parsed]
    assert " ".join(cues).split() == spoken  # every word, once, in order (a long sentence spans cues)
    times = [(start, end) for start, end, _ in parsed]
    assert all(a <= b for a, b in times)
    assert all(b1 <= a2 + 0.001 for (_, b1), (a2, _) in itertools.pairwise(times))
    m4b = read_metadata(out / "Measured Book.m4b")
    total = ffmpeg.decode(out / "Measured Book.m4b", 24_000).duration
    assert times[-1][1] <= total + 0.05
    # each chapter's first cue (its spoken title) starts at that chapter's marker plus the opening pause
    chapter_firsts = [t for t, c in zip(times, cues, strict=True) if c.startswith("Chapter ") and len(c) < 12]
    for marker, first in zip(m4b["chapters"], chapter_firsts, strict=True):
        assert abs(first[0] - (marker["start"] + 0.5)) < 0.1
    for chapter in manifest["chapters"]:  # each chapter's cues end within that chapter's audio
        srt = (out / "chapters" / f"{chapter['number']:02d} {chapter['title']}.srt").read_text()
        h, m, sec, ms = re.findall(r"--> (\d\d):(\d\d):(\d\d),(\d{3})", srt)[-1]
        assert int(h) * 3600 + int(m) * 60 + int(sec) + int(ms) / 1000 <= chapter["duration"]
    vtt = (out / "chapters" / "01 Chapter 1.vtt").read_text()
    assert vtt.startswith("WEBVTT\n\n00:00:00.500 --> ") and "Chapter 1" in vtt


@pytest.mark.slow
def test_m4b_is_tagged_as_an_audiobook(tmp_path):
    out, _, _ = build(tmp_path, {"formats": ["m4b"]})
    tags = MP4(out / "Measured Book.m4b").tags
    assert tags["stik"] == [2]  # the audiobook media type
    assert tags["©nam"] == ["Measured Book"] and tags["©ART"] == ["Ann Author"] and tags["©wrt"] == ["Fake Voice"]
    assert tags["©day"] == ["2026"] and tags["desc"] == ["A book for measuring."]
    assert (out / "Measured Book.m4b").read_bytes()[8:12] == b"M4B "


def _tone(seconds: float, amplitude: float = 0.3, rate: int = 24_000) -> np.ndarray:
    t = np.arange(int(seconds * rate)) / rate
    return amplitude * np.sin(2 * np.pi * 220 * t)


@pytest.mark.parametrize(
    ("audio", "expected", "flag"),
    [
        (_tone(4.0), 4.0, None),
        (_tone(1.5), 4.0, "0.38x"),  # cut short
        (_tone(9.0), 4.0, "2.25x"),  # runaway
        (np.concatenate([_tone(1.5), np.zeros(24_000 * 3), _tone(1.5)]), 6.0, "silence of 3.0s at 1.5s"),
        (np.clip(_tone(4.0, amplitude=1.4), -1, 1), 4.0, "clipping"),
    ],
)
def test_quality_flags(audio, expected, flag):
    pcm = (np.clip(audio, -1, 1) * 32767).astype("<i2").tobytes()
    flags = quality_flags(pcm, 24_000, expected)
    if flag is None:
        assert flags == ()
    else:
        assert any(flag in f for f in flags), flags


@pytest.mark.slow
def test_runaway_takes_are_flagged_in_manifest_and_report_without_stopping_the_run(tmp_path):
    # a request per paragraph, so that 30 % of requests are several takes (grouped takes: test_takes.py)
    runaway = Faults(runaway_rate=0.3, seed=5)
    out, report, manifest = build(tmp_path, {"formats": ["mp3"]}, faults=runaway, chunking={"target_chars": 0})
    flagged = {c["id"]: c["flags"] for c in manifest["chunks"] if c["flags"]}
    assert flagged and report["flagged_chunks"] == flagged
    for chunk in manifest["chunks"]:
        if chunk["id"] in flagged:
            assert any(re.match(r"silence of 3\.\ds", f) for f in flagged[chunk["id"]]), flagged
    assert report["exit_code"] == 0 and len(list((out / "chapters").glob("*.mp3"))) == 3


@pytest.mark.slow
def test_outputs_are_incremental(tmp_path):
    out, report, _ = build(tmp_path, {"formats": ["m4b", "mp3", "srt"], "mastering": "podcast"})
    files = sorted(p for p in out.rglob("*") if p.suffix in (".mp3", ".m4b", ".srt"))
    stamps = {p: p.stat().st_mtime_ns for p in files}
    qa = report["qa"]

    # unchanged: nothing is assembled or encoded again, and the QA of the last run still stands
    out, report, _ = build(tmp_path, {"formats": ["m4b", "mp3", "srt"], "mastering": "podcast"})
    assert report["outputs_reused"] and "outputs" not in report["timings_seconds"]
    assert {p: p.stat().st_mtime_ns for p in files} == stamps and report["qa"] == qa

    # one paragraph of chapter 2 edited: its MP3 and the M4B are encoded again, the others are not
    book = tmp_path / "book.md"
    book.write_text(book.read_text().replace("Chapter part 1-2.", "Chapter part 1-2, edited."), encoding="utf-8")
    out, report, manifest = build(tmp_path, {"formats": ["m4b", "mp3", "srt"], "mastering": "podcast"})
    assert report["requests"] == 1 and not report["outputs_reused"]  # the one take that holds the paragraph
    changed = {p.name for p in files if p.stat().st_mtime_ns != stamps[p]}
    assert {"02 Chapter 2.mp3", "Measured Book.m4b"} <= changed
    assert "01 Chapter 1.mp3" not in changed and "03 Chapter 3.mp3" not in changed
    assert [q["file"] for q in report["qa"]["files"]] == [
        "Measured Book.m4b", "01 Chapter 1.mp3", "02 Chapter 2.mp3", "03 Chapter 3.mp3"
    ] and report["qa"]["pass"]  # fmt: skip


@pytest.mark.slow
def test_opus_per_chapter_and_one_mp3_with_id3_chapters(tmp_path):
    from mutagen.flac import Picture
    from mutagen.oggopus import OggOpus

    (tmp_path / "cover.png").write_bytes(lighthouse_cover(60, 90))
    out, _, manifest = build(tmp_path, {"formats": ["opus", "mp3-book"]}, cover="cover.png")
    opus = sorted((out / "chapters").glob("*.opus"))
    assert [p.name for p in opus] == ["01 Chapter 1.opus", "02 Chapter 2.opus", "03 Chapter 3.opus"]
    for path, chapter in zip(opus, manifest["chapters"], strict=True):
        assert abs(ffmpeg.decode(path, 48_000).duration - chapter["duration"]) < 0.05
        tags = OggOpus(path)  # Ogg keeps its tags per stream, as Vorbis comments
        assert tags["title"] == [chapter["title"]] and tags["album"] == ["Measured Book"]
        picture = Picture(base64.b64decode(tags["metadata_block_picture"][0]))
        assert picture.type == 3 and picture.data == (tmp_path / "cover.png").read_bytes()
    book = out / "Measured Book.mp3"
    markers = read_metadata(book)["chapters"]
    assert [m["title"] for m in markers] == ["Chapter 1", "Chapter 2", "Chapter 3"]
    for marker, chapter in zip(markers, manifest["chapters"], strict=True):
        assert abs(marker["start"] - chapter["start"]) < 0.05
    tags = ID3(book)
    assert len(tags.getall("CHAP")) == 3 and len(tags.getall("CTOC")) == 1
    assert [a.data for a in tags.getall("APIC")] == [(tmp_path / "cover.png").read_bytes()]


def test_sentences_are_placed_at_the_pause_between_them_not_in_proportion():
    # the first sentence is spoken slowly: in proportion to characters, the second would start far too early
    first, second = "the keeper climbed the long stair.", "then she lit the lamp and waited for the boats to come home."
    gap = b"\x00\x00" * int(0.4 * 24_000)
    pcm = speech_like(first, speed=0.6) + gap + speech_like(second)
    energy = frame_energy(pcm, 240)  # 10 ms frames
    heard = len(speech_like(first, speed=0.6)) / 2 / 24_000 + 0.4  # where the second sentence's sound begins
    proportional = energy.size * 0.01 * len(first) / (len(first) + len(second))
    assert abs(proportional - heard) > 1.0
    (onset,) = sentence_onsets([len(first), len(second)], energy, 0.01)
    assert abs(onset - heard) <= 0.01
    # word gaps (60 ms) are not pauses: with no pause near, the proportional estimate stands
    energy = frame_energy(speech_like(f"{first} {second}"), 240)
    (onset,) = sentence_onsets([len(first), len(second)], energy, 0.01)
    assert onset == pytest.approx(energy.size * 0.01 * len(first) / (len(first) + len(second)))


def _poem() -> tuple[str, list[list[str]]]:
    """An HTML poem in three numbered parts, the way toolchains set verse (a stanza of line spans), and its lines
    as printed: short lines, lines with no end punctuation (narrator adds a pause comma for the ear), one line
    longer than a subtitle line, a stanza that is one sentence of twelve lines, "Mr." and a curly apostrophe."""
    nouns = ["harbour", "lantern", "gull", "tide", "rope", "mast", "shore", "sail", "net", "stone", "bell", "reef"]
    parts: list[list[str]] = []
    html_parts = []
    for p in range(3):
        stanzas = []
        for s in range(4):
            if s == 2:  # one sentence over twelve lines, most with no punctuation at their end
                verbs = ["sang", "slept", "turned"]
                lines = [f"and the {nouns[(k + p) % 12]} that {verbs[k % 3]} by the {nouns[k]}" for k in range(12)]
                lines[0] = "When " + lines[0][4:]
                lines[-1] += "."
            else:
                lines = [
                    f"The {nouns[(s + p) % 12]} was grey at the turn of the year,",
                    f"Mr. Hale’s {nouns[(s + 5) % 12]} lay still" if s == 1 else f"a {nouns[s + 3]} in the dark",
                    "and every boat that left the quay went out against the wind" if s == 3 else "so it went;",
                    "nobody called.",
                ]
            stanzas.append(lines)
        parts.append([line for stanza in stanzas for line in stanza])
        body = "".join('<div class="stanza">' + "".join(f'<span class="line">{line}</span><br/>' for line in st)
                       + "</div>" for st in stanzas)  # fmt: skip
        html_parts.append(f"<h2>{['I', 'II', 'III'][p]}.</h2>{body}")
    page = ("<html><head><title>Harbour Verses</title></head><body><h1>Harbour Verses</h1>"
            + "".join(html_parts) + "</body></html>")  # fmt: skip
    return page, parts


def _srt_cues(text: str) -> list[tuple[float, float, list[str]]]:
    cues = []
    for block in text.strip().split("\n\n"):
        index, times, *lines = block.split("\n")
        start, end = (
            sum(float(x) * f for x, f in zip(re.split(r"[:,]", t), (3600, 60, 1, 0.001), strict=True))
            for t in times.split(" --> ")
        )
        cues.append((start, end, lines))
    return cues


@pytest.mark.slow
def test_subtitles_of_verse_show_the_printed_lines_in_readable_cues(tmp_path):
    page, parts = _poem()
    (tmp_path / "poem.html").write_text(page, encoding="utf-8")
    out, _, manifest = build(tmp_path, {"formats": ["m4b", "srt"]}, sources=["poem.html"])
    cues = _srt_cues((out / "Measured Book.srt").read_text(encoding="utf-8"))
    shown = [line for _, _, lines in cues for line in lines]
    printed = [line for part in parts for line in part]
    # every printed word once, in order, with the source's punctuation: no commas added for the ear, "Mr." not
    # "Mister", the curly apostrophe kept; the numbered headings ("I.") have no cue of their own
    assert " ".join(shown).split() == ["Harbour", "Verses", *" ".join(printed).split()]
    assert not any(re.fullmatch(r"[IVX]+\.", " ".join(lines)) for _, _, lines in cues)
    # a verse line is a line of a cue: whole, or (longer than a cue's line) wrapped in two
    for line in printed:
        assert line in shown or len(line) > 42, line
    for k, (start, end, lines) in enumerate(cues):
        assert 1 <= len(lines) <= 2 and all(len(x) <= 42 for x in lines), lines
        assert end - start <= 7.0 + 1e-3, (start, end, lines)
        room = cues[k + 1][0] - end if k + 1 < len(cues) else 1.0
        assert end - start >= 1.0 - 1e-3 or room < 1e-3, (start, end, lines)
    # the twelve-line sentence is no longer one cue: it takes six of two lines
    long_sentence = parts[0][8:20]
    assert [lines for _, _, lines in cues if lines[0] in long_sentence] == [
        long_sentence[i : i + 2] for i in range(0, 12, 2)
    ]
    assert [c["title"] for c in manifest["chapters"]] == ["I.", "II.", "III."]
