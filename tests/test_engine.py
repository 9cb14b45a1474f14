"""The engine's plan of a book (run/work.py) and a chapter build's inputs (build/chapters.py), in process: what a
run will request and build is explicit before anything is sent, and a chapter's build is handed its own
chapter's slice of the book, not the book."""

from __future__ import annotations

import pickle

import pytest

from narrator.build.chapters import chapter_input
from narrator.build.fileplan import FilePlanner
from narrator.core.audio import Audio
from narrator.job.spec import load_job
from narrator.run.work import plan_book
from narrator.synthesis.script import prepare_script
from tests.conftest import write_job
from tests.helpers import put_take

WORDS = ("amber", "basalt", "cobalt")  # a word only its own chapter says


@pytest.fixture
def script(tmp_path):
    chapters = [
        f"# {word.title()}\n\n" + "\n\n".join(f"The {word} paragraph number {p}, " * 8 for p in range(6))
        for word in WORDS
    ]
    (tmp_path / "book.md").write_text("\n\n".join(chapters) + "\n", encoding="utf-8")
    spec = {"sources": ["book.md"], "output": {"dir": "out"}, "chunking": {"target_chars": 1}}
    return prepare_script(load_job(write_job(tmp_path, spec)))


def _store(script, chunks):
    for chunk in chunks:
        put_take(script.cache, script.keys[chunk.id], Audio(b"\x01\x00" * 2205, 22_050))


def test_a_plan_lists_each_missing_take_once_and_what_each_chapter_waits_for(script):
    _store(script, script.by_chapter[1])
    plan = plan_book(script)
    stored = {script.keys[c.id] for c in script.by_chapter[1]}
    assert plan.cached == stored and plan.reused == {c.id for c in script.by_chapter[1]}
    expected = [script.key_of(t) for t in script.takes if script.key_of(t) not in stored]
    assert [w.key for w in plan.takes] == list(dict.fromkeys(expected))  # reading order, each key once
    assert [c.index for c in plan.chapters] == [0, 1, 2]
    assert plan.chapters[1].waits_for == frozenset()
    for step in (plan.chapters[0], plan.chapters[2]):
        assert step.waits_for == {script.keys[c.id] for c in script.by_chapter[step.index]}
    assert plan.previous is None and plan.before == {}


def test_a_chapter_build_is_sent_its_own_chapter_and_nothing_of_the_others(script):
    _store(script, script.chunks)
    chapter = chapter_input(script, FilePlanner(script), 1)
    assert [c.id for take in chapter.takes for c in take] == [c.id for c in script.by_chapter[1]]
    assert set(chapter.keys) == set(chapter.estimates) == {c.id for c in script.by_chapter[1]}
    sent = pickle.dumps(chapter)
    assert b"basalt" in sent and b"amber" not in sent and b"cobalt" not in sent
    assert len(sent) < len(pickle.dumps(script.chapters))  # less than the text of the book
