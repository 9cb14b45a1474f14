"""Runs at the same time: one job twice (the second is refused, the first finishes), two jobs on one cache (both
finish, no take damaged), two jobs pointed at one output folder (the second is refused)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from devtools.fake_openai import FakeSpeechServer, Faults
from narrator.core.audio import read_wav
from tests.books import sentence
from tests.conftest import run_cli, write_job

pytestmark = pytest.mark.slow  # each over half a second: `pytest -m 'not slow'` leaves them out

KEY = "sk-test-0123456789abcdefghijklmnop"


def book(folder: Path, name: str, paragraphs: int, seed: int = 0) -> None:
    texts = [f"Paragraph {i}. {sentence(i + seed, 8)}" for i in range(paragraphs)]
    (folder / name).write_text("# Story\n\n" + "\n\n".join(texts) + "\n", encoding="utf-8")


def job(folder: Path, server: FakeSpeechServer, source: str, out: str, name: str = "job.yaml") -> Path:
    # a request per paragraph (target_chars 0): the runs overlap for as long as the tests need them to
    spec = {"sources": [source], "voice": {"provider": "openai", "base_url": server.url},
            "output": {"dir": out, "formats": ["m4b"]}, "cache": "cache", "concurrency": 2,
            "chunking": {"target_chars": 0}}  # fmt: skip
    return write_job(folder, spec, name)


def start(job_file: Path) -> subprocess.Popen[str]:
    env = {**os.environ, "OPENAI_API_KEY": KEY}
    return subprocess.Popen([sys.executable, "-m", "narrator", "run", str(job_file)], env=env, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)  # fmt: skip


def wait_for(path: Path, seconds: float = 60) -> None:
    deadline = time.monotonic() + seconds
    while not (path.exists() and path.read_text().strip()):
        assert time.monotonic() < deadline, f"{path} never appeared"
        time.sleep(0.05)


def test_one_job_twice_at_once_the_second_is_refused(tmp_path):
    book(tmp_path, "story.md", 40)  # 8 s of requests at least: the second run starts and ends inside them
    with FakeSpeechServer(KEY, Faults(latency=0.4)) as server:
        job_file = job(tmp_path, server, "story.md", "out")
        first = start(job_file)
        wait_for(tmp_path / "out" / ".narrator" / "lock")
        (tmp_path / "out" / "report.json").write_text("the first run's")  # stands in for its last report
        second = run_cli("run", str(job_file), env={"OPENAI_API_KEY": KEY})
        assert (tmp_path / "out" / "report.json").read_text() == "the first run's"  # the refused run wrote none
        first_out, first_err = first.communicate(timeout=120)
    assert second.returncode == 2 and "Traceback" not in second.stderr
    assert f"another run (PID {first.pid}) is using {tmp_path / 'out'}" in second.stderr
    assert first.returncode == 0, first_err
    # and once the first is done, the lock is free
    again = run_cli("run", str(job_file), env={"OPENAI_API_KEY": KEY})
    assert again.returncode == 0, again.stderr


def test_two_jobs_on_one_cache_at_once_both_finish_with_no_damaged_take(tmp_path):
    book(tmp_path, "a.md", 16)
    book(tmp_path, "b.md", 16)  # the same text: both want the same takes at the same time
    with FakeSpeechServer(KEY, Faults(latency=0.2)) as server:
        runs = [start(job(tmp_path, server, f"{n}.md", f"out-{n}", f"{n}.yaml")) for n in "ab"]
        results = [(r.wait(timeout=180), r.stderr.read() if r.stderr else "") for r in runs]
    assert [code for code, _ in results] == [0, 0], results
    takes = list((tmp_path / "cache").rglob("*.wav"))
    assert len(takes) == 17  # one title and 16 paragraphs, shared
    assert all(read_wav(t).duration > 0.3 for t in takes)
    assert not list((tmp_path / "cache").rglob("*.tmp"))
    assert all((tmp_path / f"out-{n}" / "Story.m4b").stat().st_size > 1000 for n in "ab")


def test_two_jobs_writing_to_one_output_folder(tmp_path):
    book(tmp_path, "a.md", 2)
    with FakeSpeechServer(KEY, Faults()) as server:
        first = run_cli("run", str(job(tmp_path, server, "a.md", "out", "a.yaml")), env={"OPENAI_API_KEY": KEY})
        other = run_cli("run", str(job(tmp_path, server, "a.md", "out", "b.yaml")), env={"OPENAI_API_KEY": KEY})
    assert first.returncode == 0, first.stderr
    assert other.returncode == 2 and "Traceback" not in other.stderr
    assert f"holds the book of another job ({tmp_path / 'a.yaml'})" in other.stderr
    assert json.loads((tmp_path / "out" / "report.json").read_text())["exit_code"] == 0  # a's report, untouched
