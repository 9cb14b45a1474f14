"""`narrator redo` and `narrator run` with a review file, through the CLI against the loopback fake: new takes
beside the old, a build that uses them and encodes only their chapter, decisions that go stale when the text
changes under them, and `run --strict` refusing while takes are rejected or stale."""

from __future__ import annotations

import json

import pytest
import yaml

from devtools.fake_openai import FakeSpeechServer, Faults
from narrator.core import errors
from tests.books import sentence
from tests.conftest import run_cli, write_job

pytestmark = pytest.mark.slow  # each over half a second: `pytest -m 'not slow'` leaves them out

KEY = "sk-test-0123456789abcdefghijklmnop"
ENV = {"OPENAI_API_KEY": KEY}


def _book(folder, edit: bool = False):
    chapters = []
    for c, title in enumerate(["One", "Two"]):
        texts = [sentence(c * 10 + p, 8) for p in range(3)]
        if edit and c == 0:
            texts[1] = texts[1].replace(".", " again.")
        chapters.append(f"# {title}\n\n" + "\n\n".join(texts))
    (folder / "book.md").write_text("\n\n".join(chapters) + "\n", encoding="utf-8")


def _manifest(folder) -> dict:
    return json.loads((folder / "out" / "manifest.json").read_text())


def test_redo_makes_a_new_take_that_the_next_run_uses(tmp_path):
    _book(tmp_path)
    with FakeSpeechServer(KEY, Faults(vary=True)) as fake:
        spec = {"sources": ["book.md"], "voice": {"provider": "openai", "base_url": fake.url},
                "output": {"dir": "out", "formats": ["mp3"]}, "cache": "cache",
                "chunking": {"target_chars": 0}}  # one take a paragraph  # fmt: skip
        job = write_job(tmp_path, spec)
        assert run_cli("run", str(job), env=ENV).returncode == 0
        before = _manifest(tmp_path)
        chunk = next(c for c in before["chunks"] if c["chapter"] == 2 and c["kind"] == "paragraph")
        # no review file needed: a chunk's id names its take
        redo = run_cli("redo", str(job), "--chunk", chunk["id"], env=ENV)
        assert redo.returncode == 0, redo.stderr
        assert "1 take(s) asked for again, 1 made" in redo.stderr
        review = yaml.safe_load((tmp_path / "job.review.yaml").read_text(encoding="utf-8"))
        assert review["takes"][chunk["take"]]["redone"] == 1
        again = run_cli("run", str(job), env=ENV)
        assert again.returncode == 0, again.stderr
        requests = [r.input for r in fake.records]
    report = json.loads((tmp_path / "out" / "report.json").read_text())
    after = _manifest(tmp_path)
    taken = next(c for c in after["chunks"] if c["id"] == chunk["id"])
    # the run asked for nothing (redo did), and encoded the one chapter that holds the new take
    assert report["requests"] == 0 and report["stage_runs"]["encoding"] == 1
    assert taken["cache_key"] != chunk["cache_key"] and taken["audio_hash"] != chunk["audio_hash"]
    assert requests.count(chunk["text"]) == 2  # the old take is kept, beside the new one
    assert (tmp_path / "out" / chunk["audio"]).exists() and taken["audio"] != chunk["audio"]


def test_strict_refuses_rejected_and_stale_takes(tmp_path):
    _book(tmp_path)
    with FakeSpeechServer(KEY) as fake:
        spec = {"sources": ["book.md"], "voice": {"provider": "openai", "base_url": fake.url},
                "output": {"dir": "out", "formats": ["mp3"]}, "cache": "cache",
                "chunking": {"target_chars": 0}}  # fmt: skip
        job = write_job(tmp_path, spec)
        assert run_cli("run", str(job), env=ENV).returncode == 0
        takes = _manifest(tmp_path)["takes"]
        first, second = takes[1], takes[2]  # chapter One's first two paragraphs
        blocks = {c["id"]: c["block"] for c in _manifest(tmp_path)["chunks"]}
        decided = {t["id"]: {"source": _hash(t["text"]), "status": s, "chapter": 1, "block": blocks[t["chunks"][0]]}
                   for t, s in ((first, "rejected"), (second, "approved"))}  # fmt: skip
        (tmp_path / "job.review.yaml").write_text(yaml.safe_dump({"takes": decided}), encoding="utf-8")
        refused = run_cli("run", str(job), "--strict", env=ENV)
        assert refused.returncode == errors.EXIT_STRICT
        assert "1 rejected and 0 stale take(s)" in refused.stderr
        # the approved paragraph is edited: its approval no longer fits, and shows as stale
        _book(tmp_path, edit=True)
        assert run_cli("run", str(job), env=ENV).returncode == 0
        states = {t["review"] for t in _manifest(tmp_path)["takes"] if "review" in t}
        assert states == {"rejected", "stale"}
        assert "1 stale" in run_cli("run", str(job), "--strict", env=ENV).stderr


def test_redo_says_what_it_needs(tmp_path):
    _book(tmp_path)
    job = write_job(tmp_path, {"sources": ["book.md"], "output": {"dir": "out"}})
    nothing = run_cli("redo", str(job))
    assert nothing.returncode == errors.EXIT_INVALID and nothing.stderr.count("\n") == 1
    assert "--rejected, --chunk ID or --chapter N" in nothing.stderr
    unknown = run_cli("redo", str(job), "--chunk", "c000000000000")
    assert unknown.returncode == errors.EXIT_INVALID and "no chunk c000000000000" in unknown.stderr
    far = run_cli("redo", str(job), "--chapter", "9")
    assert far.returncode == errors.EXIT_INVALID and "chapters 1 to 2, not 9" in far.stderr


def _hash(text: str) -> str:
    from narrator.job.review import text_hash

    return text_hash(text)
