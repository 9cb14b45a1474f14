"""`narrator diff`: after a one-word edit, exactly that change, one or two takes to request and the files a run
would encode again; `--check` is a gate (1 while work is pending, 0 after the run)."""

from __future__ import annotations

import json

import pytest

from devtools.fake_openai import FakeSpeechServer
from tests.books import sentence
from tests.conftest import run_cli, write_job

pytestmark = pytest.mark.slow  # each over half a second: `pytest -m 'not slow'` leaves them out

KEY = "sk-test-0123456789abcdefghijklmnop"
ENV = {"OPENAI_API_KEY": KEY}


def _book(folder, word: str = "") -> None:
    chapters = []
    for c, title in enumerate(["One", "Two", "Three"]):
        texts = [f"{sentence(c * 10 + p, 9)} {sentence(c * 10 + p + 4, 7)}" for p in range(4)]
        if word and c == 1:
            texts[2] = texts[2].replace(" ", f" {word} ", 1)
        chapters.append(f"# {title}\n\n" + "\n\n".join(texts))
    (folder / "book.md").write_text("\n\n".join(chapters) + "\n", encoding="utf-8")


def test_a_one_word_edit_is_one_change_and_a_gate_for_ci(tmp_path):
    _book(tmp_path)
    with FakeSpeechServer(KEY) as fake:
        spec = {"sources": ["book.md"], "title": "Diffed", "voice": {"provider": "openai", "base_url": fake.url},
                "output": {"dir": "out", "formats": ["m4b", "mp3"]}, "cache": "cache"}  # fmt: skip
        job = write_job(tmp_path, spec)
        fresh = run_cli("diff", str(job), "--check")  # no key needed: diff sends nothing
        assert fresh.returncode == 1 and "no build yet" in fresh.stdout
        assert run_cli("run", str(job), env=ENV).returncode == 0
        clean = run_cli("diff", str(job), "--check")
        assert clean.returncode == 0 and "up to date" in clean.stdout

        _book(tmp_path, word="quietly")
        pending = run_cli("diff", str(job), "--json", "--check")
        assert pending.returncode == 1, pending.stderr
        diff = json.loads(pending.stdout)
        assert 1 <= diff["requests"] <= 2 and diff["cost_usd"] > 0
        [chapter] = diff["chapters"]  # only the chapter with the change
        assert chapter["number"] == 2 and chapter["title"] == "Two"
        [change] = chapter["changes"]
        assert change["kind"] == "changed" and "quietly" in change["text"]
        assert "chapters/02 Two.mp3" in chapter["files"]
        assert not any("One" in f or "Three" in f for f in chapter["files"])
        assert diff["books"] == [{"file": "Diffed.m4b", "how": "remux"}]  # one segment encoded, the book joined

        assert run_cli("run", str(job), env=ENV).returncode == 0
        report = json.loads((tmp_path / "out" / "report.json").read_text())
        assert report["requests"] == diff["requests"]  # what diff said a run would request, it did
        after = run_cli("diff", str(job), "--check")
        assert after.returncode == 0, after.stdout

        (tmp_path / "out" / "Diffed.m4b").unlink()  # lost: every chapter is as built, but a run makes it again
        lost = run_cli("diff", str(job), "--check")
        assert lost.returncode == 1 and "remux  Diffed.m4b" in lost.stdout, lost.stdout
        assert run_cli("run", str(job), env=ENV).returncode == 0
        assert run_cli("diff", str(job), "--check").returncode == 0
