"""`narrator cache prune` never removes a take that a listed job asks for or that its review file refers to
(property-tested over books and redone takes), removes every other whole take, and spares a take written while it
runs."""

from __future__ import annotations

import os
import time

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from narrator.job.review import ReviewFile, decision_for, update_review
from narrator.job.spec import load_job
from narrator.run.cachetools import survey, used_keys
from narrator.synthesis.cache import TakeCache
from narrator.synthesis.script import prepare_script
from tests.books import sentence
from tests.conftest import run_cli, write_job

HOUR_AGO = time.time() - 3600


def _put(cache: TakeCache, key: str, age: float = HOUR_AGO) -> None:
    path = cache.path(key)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"RIFF")
    path.with_suffix(".sha256").write_text("0" * 64)
    os.utime(path, (age, age))


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    paragraphs=st.lists(st.integers(0, 200), min_size=1, max_size=6, unique_by=lambda p: sentence(p, 7)),
    redone=st.lists(st.integers(0, 2), min_size=6, max_size=6),
    junk=st.integers(0, 5),
    present=st.floats(0.0, 1.0),
)
def test_prune_keeps_every_take_a_job_or_its_review_file_uses(tmp_path_factory, paragraphs, redone, junk, present):
    folder = tmp_path_factory.mktemp("prune")
    (folder / "book.md").write_text("# One\n\n" + "\n\n".join(sentence(p, 7) for p in paragraphs) + "\n")
    job = load_job(write_job(folder, {"sources": ["book.md"], "output": {"dir": "out"}, "cache": "cache",
                                      "chunking": {"target_chars": 0}}))  # fmt: skip
    script = prepare_script(job)

    def redo(review: ReviewFile) -> None:
        for take, times in zip(script.takes, redone, strict=False):
            if times:
                decision = review.takes[take.id] = decision_for(take)
                decision.redone, decision.chosen = times, 0  # the book uses the first take: the others still count

    update_review(job.path, redo)
    used = used_keys([job])
    # every take of the book, and every take an editor had asked for again: each its own key
    assert len(used) == len(script.takes) + sum(redone[: len(script.takes)])
    assert {script.key_of(t) for t in script.takes} <= set(used)
    cache = TakeCache(job.cache)
    kept = sorted(used)[: max(1, round(len(used) * present))]
    for key in kept:
        _put(cache, key)
    strays = [f"{n:064x}" for n in range(junk)]
    for key in strays:
        _put(cache, key)
    report = survey(job.cache, [job], prune=True)
    assert report.removed == junk
    assert all(cache.has(k) for k in kept) and not any(cache.has(k) for k in strays)
    assert not any(cache.path(k).with_suffix(".sha256").exists() for k in strays)


@pytest.mark.slow
def test_prune_is_a_dry_run_unless_told_and_spares_a_take_being_written(tmp_path):
    (tmp_path / "book.md").write_text("# One\n\n" + sentence(1, 8) + "\n")
    job_file = write_job(tmp_path, {"sources": ["book.md"], "output": {"dir": "out"}, "cache": "cache"})
    cache = TakeCache(tmp_path / "cache")
    _put(cache, "a" * 64)
    _put(cache, "b" * 64, age=time.time() + 60)  # written after the prune began: another run's new take
    dry = run_cli("cache", "prune", str(job_file))
    assert dry.returncode == 0 and "1 take(s) no listed job uses" in dry.stdout and cache.has("a" * 64)
    stats = run_cli("cache", "stats", str(job_file))
    assert stats.returncode == 0 and "2 takes" in stats.stdout and "unused: 2" in stats.stdout
    done = run_cli("cache", "prune", str(job_file), "--yes")
    assert done.returncode == 0 and "removed 1 unused take(s)" in done.stdout
    assert not cache.has("a" * 64) and cache.has("b" * 64)
