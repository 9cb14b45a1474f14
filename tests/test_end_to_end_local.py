"""The real CLI on the real offline voice: decode what it wrote and measure it."""

import json
import os
import signal
import subprocess
import sys
import time

import pytest

from narrator.core import ffmpeg
from narrator.core.audio import read_wav
from narrator.job.spec import PauseSpec
from tests.books import nested_epub3, paragraph
from tests.conftest import run_cli, write_job
from tests.helpers import read_metadata

pytestmark = pytest.mark.slow  # each over half a second: `pytest -m 'not slow'` leaves them out

RATE = 22050  # piper's rate; decoding at the source rate keeps durations exact


def expected_chapter_seconds(manifest: dict, chapter: int, pauses: PauseSpec) -> float:
    """From the manifest alone: each take's trimmed duration, plus the pause its place calls for."""
    gap = {"chapter_start": pauses.chapter_start, "after_heading": pauses.after_heading,
           "paragraph": pauses.paragraph, "chunk": pauses.chunk, "scene_break": pauses.scene_break}  # fmt: skip
    total = pauses.chapter_end
    for chunk in manifest["chunks"]:
        if chunk["chapter"] == chapter:
            total += chunk["duration"] + gap[chunk_gap(manifest, chunk)]
    return total


def chunk_gap(manifest: dict, chunk: dict) -> str:
    same_chapter = [c for c in manifest["chunks"] if c["chapter"] == chunk["chapter"]]
    i = same_chapter.index(chunk)
    if i == 0:
        return "chapter_start"
    prev = same_chapter[i - 1]
    if prev["block"] == chunk["block"]:
        return "chunk"
    if prev["kind"] == "heading":
        return "after_heading"
    return "scene_break" if chunk["block"] - prev["block"] > 1 else "paragraph"


@pytest.fixture(scope="module")
def book_run(tmp_path_factory):
    folder = tmp_path_factory.mktemp("book")
    nested_epub3(folder / "book.epub")
    (folder / "after.md").write_text(f"{paragraph(20)}\n\n* * *\n\n{paragraph(21)}\n", encoding="utf-8")
    job = write_job(
        folder,
        {
            "sources": ["book.epub", {"path": "after.md", "title": "Afterword"}],
            "author": "Job Author",
            "chunking": {"max_chars": 160},  # several chunks per paragraph: chunk seams get exercised
            "output": {"dir": "out", "formats": ["m4b", "mp3"]},
            "cache": "cache",
        },
    )
    result = run_cli("run", str(job))
    assert result.returncode == 0, result.stderr
    out = folder / "out"
    return folder, job, out, json.loads((out / "manifest.json").read_text()), result


def test_chapters_titles_and_order(book_run):
    folder, job, out, manifest, result = book_run
    titles = ["First Light", "Second Tide", "Third Bell", "Fourth Wind", "Afterword"]
    assert [c["title"] for c in manifest["chapters"]] == titles
    m4b = out / "Test Book Three.m4b"
    meta = read_metadata(m4b)
    assert [c["title"] for c in meta["chapters"]] == titles
    assert meta["tags"]["title"] == "Test Book Three" and meta["tags"]["artist"] == "Job Author"
    mp3s = sorted((out / "chapters").glob("*.mp3"))
    assert [p.name for p in mp3s] == [f"{i:02d} {t}.mp3" for i, t in enumerate(titles, 1)]
    for i, path in enumerate(mp3s, 1):
        tags = read_metadata(path)["tags"]
        assert tags["title"] == titles[i - 1] and tags["track"] == f"{i}/5" and tags["album"] == "Test Book Three"
    # stdout lists exactly the files written
    assert result.stdout.split("\n")[0] == str(m4b)


def test_each_chapter_is_its_takes_and_pauses(book_run):
    folder, job, out, manifest, _ = book_run
    pauses = PauseSpec()
    mp3s = sorted((out / "chapters").glob("*.mp3"))
    starts = []
    position = 0.0
    for number, path in enumerate(mp3s, 1):
        measured = ffmpeg.decode(path, RATE).duration
        expected = expected_chapter_seconds(manifest, number, pauses)
        # the closing pause is lengthened to whole AAC frames of the M4B (1024 samples: 46 ms at this rate)
        assert expected - 0.02 < measured < expected + 1024 / RATE + 0.02, (path.name, measured, expected)
        frames = manifest["chapters"][number - 1]["duration"] * RATE / 1024  # to 4 decimals of a second
        assert abs(frames - round(frames)) < 0.01
        starts.append(position)
        position += manifest["chapters"][number - 1]["duration"]
    # the M4B's markers sit where the chapter files' cumulative durations say, and its length is the sum
    meta = read_metadata(out / "Test Book Three.m4b")
    for marker, start in zip(meta["chapters"], starts, strict=False):
        assert abs(marker["start"] - start) < 0.05
    assert abs(ffmpeg.decode(out / "Test Book Three.m4b", RATE).duration - position) < 0.1


def test_takes_are_real_speech_and_trimmed(book_run):
    folder, job, out, manifest, _ = book_run
    for chunk in manifest["chunks"]:
        take = read_wav((out / chunk["audio"]).resolve())
        assert take.rate == RATE
        # speech, at a plausible pace (piper at ~165 words a minute, 3-4 words a second at most)
        words = len(chunk["text"].split())
        assert 0.15 * words < chunk["duration"] <= take.duration
        assert chunk["status"] == "synthesized" and chunk["tokens"] > 0
    # nothing of the skipped pages reached the manifest
    text = " ".join(c["text"] for c in manifest["chunks"])
    assert "footnote" not in text and "rights" not in text
    # ... and the report says so: nothing vanishes without a word
    report = json.loads((out / "report.json").read_text())
    assert "book.epub: y-rights.xhtml (copyright-page): not read" in report["not_read"], report["not_read"]


def test_rerun_synthesizes_nothing_and_keeps_ids(book_run):
    folder, job, out, manifest, _ = book_run
    result = run_cli("run", str(job))
    assert result.returncode == 0, result.stderr
    report = json.loads((out / "report.json").read_text())
    assert report["chunks"]["synthesized"] == 0 and report["chunks"]["reused"] == report["chunks"]["total"]
    assert report["requests"] == 0
    again = json.loads((out / "manifest.json").read_text())
    assert [c["id"] for c in again["chunks"]] == [c["id"] for c in manifest["chunks"]]


def test_editing_a_paragraph_resynthesizes_only_its_chunks(tmp_path):
    source = tmp_path / "story.md"
    paragraphs = [paragraph(i) for i in range(6)]
    source.write_text("# Story\n\n" + "\n\n".join(paragraphs) + "\n", encoding="utf-8")
    job = write_job(tmp_path, {"sources": ["story.md"], "output": {"dir": "out", "formats": ["mp3"]}})
    assert run_cli("run", str(job)).returncode == 0
    paragraphs[3] = paragraphs[3].replace("harbour", "quiet harbour", 1) + " An added sentence."
    source.write_text("# Story\n\n" + "\n\n".join(paragraphs) + "\n", encoding="utf-8")
    assert run_cli("run", str(job)).returncode == 0
    report = json.loads((tmp_path / "out" / "report.json").read_text())
    assert report["chunks"]["synthesized"] == 1 and report["chunks"]["reused"] == 7 - 1


def test_a_killed_run_resumes_with_only_the_unfinished_chunks(tmp_path):
    source = tmp_path / "long.md"
    # every paragraph distinct, so one take on disk is one chunk
    body = "\n\n".join(f"Section {i}. {paragraph(i, 2)}" for i in range(40))
    source.write_text(f"# Long\n\n{body}\n", encoding="utf-8")
    job = write_job(
        tmp_path,
        {
            "sources": ["long.md"],
            "output": {"dir": "out", "formats": ["mp3"]},
            "cache": "cache",
            "concurrency": 2,
        },
    )
    takes = tmp_path / "cache" / "takes"
    proc = subprocess.Popen(
        [sys.executable, "-m", "narrator", "run", str(job)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and len(list(takes.glob("*/*.wav"))) < 8:
        time.sleep(0.05)
    os.kill(proc.pid, signal.SIGKILL)  # no chance to clean up: the hardest way to die
    proc.wait()
    assert proc.returncode == -signal.SIGKILL
    finished = len(list(takes.glob("*/*.wav")))
    assert 8 <= finished < 41, "the run must be killed midway"
    assert not (tmp_path / "out" / "chapters").exists()

    result = run_cli("run", str(job))
    assert result.returncode == 0, result.stderr
    report = json.loads((tmp_path / "out" / "report.json").read_text())
    assert report["chunks"]["total"] == 41
    assert report["chunks"]["reused"] == finished
    assert report["chunks"]["synthesized"] == 41 - finished
    assert len(list((tmp_path / "out" / "chapters").glob("*.mp3"))) == 1


def test_the_offline_voice_writes_nothing_outside_the_output_and_cache(tmp_path):
    home, scratch = tmp_path / "home", tmp_path / "tmp"
    home.mkdir()
    scratch.mkdir()
    (tmp_path / "a.md").write_text("# A\n\nOne short paragraph to speak.\n", encoding="utf-8")
    job = write_job(tmp_path, {"sources": ["a.md"], "output": {"dir": "out", "formats": ["mp3"]}})
    env = {"HOME": str(home), "TMPDIR": str(scratch), "XDG_CACHE_HOME": str(home / ".cache")}
    env_without = {k: v for k, v in os.environ.items() if k != "ORT_DISABLE_TELEMETRY"}
    result = subprocess.run([sys.executable, "-m", "narrator", "run", str(job)], capture_output=True, text=True,
                            env={**env_without, **env}, timeout=300)  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert not list(home.rglob("*")) and not list(scratch.rglob("*"))
