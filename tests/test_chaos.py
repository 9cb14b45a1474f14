"""SIGKILL at ten moments spread over a whole run (synthesis, assembly, encoding) against a flaky server: after
each, a rerun finishes, every take in the cache is whole, and the book decodes to every chunk in order."""

from __future__ import annotations

import json
import os
import random
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from devtools.fake_openai import FakeSpeechServer, Faults
from narrator.core import ffmpeg
from narrator.core.audio import read_wav
from narrator.synthesis.cache import TakeCache
from tests.books import sentence
from tests.conftest import run_cli, write_job

pytestmark = pytest.mark.slow  # each over half a second: `pytest -m 'not slow'` leaves them out

KEY = "sk-test-0123456789abcdefghijklmnop"


def book(folder: Path) -> list[str]:
    texts, parts = [], []
    for c in range(3):
        paragraphs = [f"Part {c} paragraph {i}. {sentence(c * 40 + i, 9)}" for i in range(10)]
        parts.append(f"# Chapter {c + 1}\n\n" + "\n\n".join(paragraphs))
        texts += [f"Chapter {c + 1}", *paragraphs]
    (folder / "book.md").write_text("\n\n".join(parts) + "\n", encoding="utf-8")
    return texts


def start(job: Path) -> subprocess.Popen[bytes]:
    env = {**os.environ, "OPENAI_API_KEY": KEY}
    return subprocess.Popen([sys.executable, "-m", "narrator", "run", str(job)], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip


def verify(folder: Path, texts: list[str]) -> None:
    """The book holds every chunk, in order, each take whole; every file decodes to the length the manifest
    gives it."""
    manifest = json.loads((folder / "out" / "manifest.json").read_text())
    assert [c["text"] for c in manifest["chunks"]] == texts
    cache = TakeCache(folder / "cache")
    for chunk in manifest["chunks"]:
        take = read_wav(cache.path(chunk["cache_key"]))
        assert take.duration > 0.2 and cache.audio_hash(chunk["cache_key"]) == chunk["audio_hash"]
    for chapter in manifest["chapters"]:
        offsets = [c["offset"] for c in manifest["chunks"] if c["chapter"] == chapter["number"]]
        assert offsets == sorted(offsets)
        mp3 = folder / "out" / "chapters" / f"{chapter['number']:02d} {chapter['title']}.mp3"
        assert abs(ffmpeg.decode(mp3, 24_000).duration - chapter["duration"]) < 0.08, mp3
    total = sum(c["duration"] for c in manifest["chapters"])
    assert abs(ffmpeg.decode(folder / "out" / "Chapter 1.m4b", 24_000).duration - total) < 0.2
    assert not list((folder / "cache").rglob("*.tmp")) and not list((folder / "out").rglob("*.tmp"))


def test_sigkill_at_ten_moments_then_a_rerun_finishes(tmp_path):
    texts = book(tmp_path)
    flaky = Faults(latency=0.08, error_rate=0.08, cut_rate=0.03, reset_rate=0.02, seed=5)
    rng = random.Random(7)
    with FakeSpeechServer(KEY, flaky) as server:
        spec = {"sources": ["book.md"], "voice": {"provider": "openai", "base_url": server.url},
                "output": {"dir": "out", "formats": ["m4b", "mp3"], "mastering": "podcast"}, "cache": "cache",
                "concurrency": 4}  # fmt: skip
        job = write_job(tmp_path, spec)
        began = time.monotonic()
        assert run_cli("run", str(job), env={"OPENAI_API_KEY": KEY}).returncode == 0
        whole = time.monotonic() - began
        requests = len(json.loads((tmp_path / "out" / "manifest.json").read_text())["takes"])
        phases = []
        for i in range(10):
            shutil.rmtree(tmp_path / "cache")
            shutil.rmtree(tmp_path / "out")
            proc = start(job)
            time.sleep(whole * (i + rng.random()) / 10)  # one moment in each tenth of a run
            takes = len(list((tmp_path / "cache").rglob("*.wav")))
            proc.send_signal(signal.SIGKILL)
            proc.wait()
            phases.append("synthesis" if takes < requests else "build")
            rerun = run_cli("run", str(job), env={"OPENAI_API_KEY": KEY})
            assert rerun.returncode == 0, (i, rerun.stderr)
            verify(tmp_path, texts)
    assert {"synthesis", "build"} <= set(phases), phases  # the kills fell in both halves of a run
