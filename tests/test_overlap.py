"""The back end behind synthesis: a chapter is assembled and encoded as soon as its takes are stored, while later
chapters are still being synthesized; a run that stops keeps the chapter files it finished, recorded as such."""

from __future__ import annotations

import json
from dataclasses import replace

import pytest

from devtools.fake_openai import FakeSpeechServer, Faults
from narrator.core import errors
from tests.books import sentence
from tests.conftest import run_cli, write_job
from tests.helpers import read_metadata

pytestmark = pytest.mark.slow  # each over half a second: `pytest -m 'not slow'` leaves them out

KEY = "sk-test-0123456789abcdefghijklmnop"
TITLES = ["One", "Two", "Three"]


def _book(folder):
    chapters = []
    for c, title in enumerate(TITLES):
        texts = [f"{sentence(c * 10 + p, 9)} {sentence(c * 10 + p + 5, 7)}" for p in range(3)]
        chapters.append(f"# {title}\n\n" + "\n\n".join(texts))
    (folder / "book.md").write_text("\n\n".join(chapters) + "\n", encoding="utf-8")


def _job(folder, server, **extra):
    spec = {"sources": ["book.md"], "title": "Overlap", "voice": {"provider": "openai", "base_url": server.url},
            "output": {"dir": "out", "formats": ["m4b", "mp3"]}, "cache": "cache", **extra}  # fmt: skip
    return write_job(folder, spec)


def test_the_first_chapter_is_encoded_while_the_last_is_still_being_synthesized(tmp_path):
    _book(tmp_path)
    first_file = tmp_path / "out" / "chapters" / "01 One.mp3"
    # the server answers the last chapter only once the first chapter's file is on disk: a back end that waited
    # for the end of synthesis would never see it, and every attempt would end in a 503 after 20 s
    faults = Faults(hold=("Three", first_file), hold_seconds=20)
    with FakeSpeechServer(KEY, faults) as server:
        job = _job(tmp_path, server, retry={"attempts": 2, "max_seconds": 60})
        result = run_cli("run", str(job), env={"OPENAI_API_KEY": KEY})
        records = server.records
    assert result.returncode == 0, result.stderr
    assert all(r.status == 200 for r in records) and any("Three" in r.input for r in records)
    report = json.loads((tmp_path / "out" / "report.json").read_text())
    assert report["stage_runs"]["remux"] == 1 and report["stage_runs"]["book_encoding"] == 3
    assert [m["title"] for m in read_metadata(tmp_path / "out" / "Overlap.m4b")["chapters"]] == TITLES


def test_a_run_that_stops_keeps_the_chapter_files_it_finished(tmp_path):
    _book(tmp_path)
    out = tmp_path / "out"
    # one request per chapter, in reading order; the quota runs out before the last chapter
    with FakeSpeechServer(KEY, Faults(quota_after=2)) as server:
        job = _job(tmp_path, server, concurrency=1)
        stopped = run_cli("run", str(job), env={"OPENAI_API_KEY": KEY})
        assert stopped.returncode == errors.EXIT_FATAL_PROVIDER, stopped.stderr
        assert sorted(p.name for p in (out / "chapters").iterdir()) == ["01 One.mp3", "02 Two.mp3"]
        assert not (out / "Overlap.m4b").exists()  # no partial whole-book file
        manifest = json.loads((out / "manifest.json").read_text())
        assert {"chapters/01 One.mp3", "chapters/02 Two.mp3"} <= set(manifest["fingerprints"])
        assert len(list((out / ".narrator" / "segments").iterdir())) == 2

        server.state.faults = replace(server.state.faults, quota_after=None)  # the account is topped up
        resumed = run_cli("run", str(job), env={"OPENAI_API_KEY": KEY})
    assert resumed.returncode == 0, resumed.stderr
    report = json.loads((out / "report.json").read_text())
    # only the last chapter: one request, its file and its segment encoded, the book remuxed
    assert report["requests"] == 1
    assert report["stage_runs"]["encoding"] == 1 and report["stage_runs"]["book_encoding"] == 1
    assert report["stage_runs"]["remux"] == 1
    assert sorted(p.name for p in (out / "chapters").iterdir()) == ["01 One.mp3", "02 Two.mp3", "03 Three.mp3"]
    assert [m["title"] for m in read_metadata(out / "Overlap.m4b")["chapters"]] == TITLES
