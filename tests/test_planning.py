"""Plans, directly: what a run would send, what it would cost, and the time it is bound by."""

from __future__ import annotations

import pytest

from narrator.core.audio import Audio
from narrator.job.spec import load_job
from narrator.run.planning import make_plan, render_plan
from narrator.synthesis.script import prepare_script
from tests.conftest import write_job
from tests.helpers import put_take

BOOK = "# One\n\nFirst paragraph here.\n\nSecond paragraph, a little longer than the first.\n\n# Two\n\nThird.\n"


@pytest.fixture
def book(tmp_path):
    (tmp_path / "book.md").write_text(BOOK)
    return tmp_path


def test_a_plan_counts_chunks_and_what_is_cached(book):
    job = load_job(write_job(book, {"sources": ["book.md"], "output": {"dir": "out"}}))
    script = prepare_script(job)
    plan = make_plan(job, script)
    assert [(c.number, c.title, c.chunks) for c in plan.chapters] == [(1, "One", 3), (2, "Two", 2)]
    assert plan.total.chunks == 5 and plan.total.requests_to_send == 5 and plan.total.cost_usd == 0
    first = script.chunks[0]
    put_take(script.cache, script.keys[first.id], Audio(b"\x00\x00" * 100, 22_050))
    again = make_plan(job, prepare_script(job))
    assert again.total.cached == 1 and again.total.requests_to_send == 4
    assert "to do: 4 requests" in render_plan(again)


def test_openai_prices_and_a_jobs_own_price_table(book, monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
    voice = {"provider": "openai", "model": "tts-1"}
    job = load_job(write_job(book, {"sources": ["book.md"], "voice": voice, "output": {"dir": "out"}}))
    plan = make_plan(job)
    chars = plan.total.characters
    assert plan.price == {"per_million_input_tokens": 0.0, "per_million_chars": 15.0, "per_audio_hour": 0.0}
    assert plan.total.cost_usd == pytest.approx(chars * 15 / 1e6, abs=1e-4)
    spec = {
        "sources": ["book.md"],
        "voice": voice,
        "prices": {"tts-1": {"per_million_chars": 100}},
        "output": {"dir": "out"},
    }
    assert make_plan(load_job(write_job(book, spec))).total.cost_usd == pytest.approx(chars * 100 / 1e6, abs=1e-4)


def test_the_time_bound_is_the_largest_of_concurrency_rpm_and_tpm(book, monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
    base = {"sources": ["book.md"], "voice": {"provider": "openai"}, "output": {"dir": "out"}, "concurrency": 5}
    plan = make_plan(load_job(write_job(book, base)))
    assert plan.total.time_bound_by == "concurrency"
    # 2 requests (a take per chapter: its heading and paragraphs) at 6 a minute: 20 s, far over what 5 workers need
    paced = make_plan(load_job(write_job(book, {**base, "requests_per_minute": 6})))
    assert (paced.total.chunks, paced.total.takes, paced.total.requests_to_send) == (5, 2, 2)
    assert paced.total.time_bound_by == "requests_per_minute" and paced.total.time_seconds == pytest.approx(20)
    tokens = paced.total.tokens
    slow = make_plan(load_job(write_job(book, {**base, "requests_per_minute": 6, "tokens_per_minute": 1})))
    assert slow.total.time_bound_by == "tokens_per_minute" and slow.total.time_seconds == pytest.approx(tokens * 60)


def test_plan_json_keeps_its_keys(book):
    job = load_job(write_job(book, {"sources": ["book.md"], "output": {"dir": "out"}}))
    data = make_plan(job).to_json()
    assert {"job", "title", "provider", "price", "limits", "concurrency", "requests_per_minute", "tokens_per_minute",
            "budget_usd", "chapters", "total", "not_read"} <= set(data)  # fmt: skip
    assert set(data["chapters"][0]) == {"number", "title", "opening", "chunks", "takes", "characters", "tokens",
                                        "cached", "audio_seconds", "cost_usd", "cost_to_finish_usd"}  # fmt: skip
    assert {"requests_to_send", "time_seconds", "time_bound_by"} <= set(data["total"])


@pytest.mark.slow
def test_plan_and_validate_need_no_key(book, cli):
    # a user prices a book before getting a key; CI checks specs without secrets
    voice = {"provider": "openai", "model": "tts-1", "api_key_env": "NARRATOR_NO_SUCH_KEY"}
    job = write_job(book, {"sources": ["book.md"], "voice": voice, "output": {"dir": "out"}})
    assert cli("validate", str(job)).returncode == 0
    plan = cli("plan", str(job))
    assert plan.returncode == 0 and "to do: 2 requests" in plan.stdout, plan.stderr
