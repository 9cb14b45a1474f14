"""A disk that fills up mid-run: one line and a documented exit code, and nothing damaged (every take in the
cache whole, nothing half-written under a final name). A real file system that is really full: a small tmpfs
(CI runs as root; elsewhere the test says why it cannot run)."""

from __future__ import annotations

import hashlib
import subprocess
from pathlib import Path

import pytest

from narrator.core.audio import read_wav
from tests.books import paragraph
from tests.conftest import run_cli, write_job

pytestmark = pytest.mark.slow  # each over half a second: `pytest -m 'not slow'` leaves them out


@pytest.fixture
def small_disk(tmp_path):
    disk = tmp_path / "disk"
    disk.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1500k", "tmpfs", str(disk)], capture_output=True)
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a small file system here (needs root): {mounted.stderr.decode().strip()}")
    try:
        yield disk
    finally:
        subprocess.run(["umount", "-l", str(disk)], check=False)


def test_a_full_disk_is_one_line_and_damages_nothing(tmp_path, small_disk: Path):
    body = "\n\n".join(f"Section {i}. {paragraph(i, 2)}" for i in range(20))  # ~3 MB of takes for 1.5 MB
    (tmp_path / "book.md").write_text(f"# Long\n\n{body}\n", encoding="utf-8")
    spec = {"sources": ["book.md"], "output": {"dir": str(small_disk / "out"), "formats": ["mp3"]},
            "cache": str(small_disk / "cache")}  # fmt: skip
    result = run_cli("run", str(write_job(tmp_path, spec)))
    lines = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert result.returncode == 2 and "Traceback" not in result.stderr, result.stderr
    assert len(lines) == 1 and "No space left on device" in lines[0] and "finished takes are kept" in lines[0]
    takes = list((small_disk / "cache").rglob("*.wav"))
    assert takes, "some takes were finished before the disk filled"
    for take in takes:  # every take under a final name is whole: its samples hash to what was recorded
        audio = read_wav(take)
        assert audio.duration > 0.2  # a one-word heading's take is about half a second
        assert hashlib.sha256(audio.pcm).hexdigest() == take.with_suffix(".sha256").read_text()
    assert not list((small_disk / "out").rglob("*.mp3"))
