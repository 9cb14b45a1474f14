"""The scheduler and its limiter, directly: a provider written here (the interface is small enough for a test
to implement) that answers from a script of outcomes, a real cache on disk, real asyncio timing."""

from __future__ import annotations

import asyncio
from collections import Counter
from dataclasses import replace
from typing import Any, cast

import pytest

from narrator.core import errors
from narrator.job.spec import RetrySpec
from narrator.providers.base import Events, Profile, Provider, ProviderLimits, TakeSink
from narrator.synthesis.cache import TakeCache
from narrator.synthesis.scheduler import Limiter, TakeResult, Work, synthesize_all


class ScriptedProvider(Provider):
    """Speaks one second of a tone per take, or raises what ``script[text]`` says for each attempt in turn."""

    def __init__(self, script: dict[str, list[Exception]] | None = None, delay: float = 0.0):
        self.profile = Profile(limits=ProviderLimits(), speech_seconds=len, request_seconds=lambda t: 0.0)
        self.script = {k: list(v) for k, v in (script or {}).items()}
        self.delay = delay
        self.calls: list[str] = []
        self.in_flight = self.most_in_flight = 0
        self.closed = False

    def fingerprint(self) -> dict[str, Any]:
        return {"provider": "scripted"}

    async def synthesize(self, text: str, sink: TakeSink, events: Events) -> None:
        self.calls.append(text)
        self.in_flight += 1
        self.most_in_flight = max(self.most_in_flight, self.in_flight)
        try:
            events.response("200")
            await asyncio.sleep(self.delay)
            if self.script.get(text):
                raise self.script[text].pop(0)
            events.accepted()
            sink.write(b"\x10\x00" * 8000, 8000)
        finally:
            self.in_flight -= 1

    async def aclose(self) -> None:
        self.closed = True


def run(work: list[Work], provider: Provider, tmp_path, **options: Any):
    settings = {"concurrency": 4, "limiter": Limiter(), "retry": RetrySpec(attempts=3, max_seconds=30), **options}
    seen: list[tuple[str, str]] = []

    def on_take(key: str, result: TakeResult) -> None:
        seen.append((key, result.status))

    work = [replace(w, provider=provider) for w in work]  # every take read by this provider
    outcome = asyncio.run(synthesize_all(work, TakeCache(tmp_path), on_take=on_take, **settings))
    return outcome, seen


def works(*texts: str) -> list[Work]:
    return [Work(f"{i:02d}" + "0" * 62, text, 3, provider=cast(Provider, None)) for i, text in enumerate(texts)]


def test_every_take_is_made_once_stored_and_reported(tmp_path):
    provider = ScriptedProvider(delay=0.01)
    items = works(*(f"take {i}" for i in range(10)))
    outcome, seen = run(items, provider, tmp_path, concurrency=3)
    assert sorted(provider.calls) == sorted(w.text for w in items)
    assert provider.most_in_flight <= 3 and provider.closed
    assert {k: r.status for k, r in outcome.results.items()} == {w.key: "synthesized" for w in items}
    assert sorted(k for k, _ in seen) == sorted(w.key for w in items)
    assert all(TakeCache(tmp_path).has(w.key) for w in items)
    assert outcome.requests == 10 and outcome.responses == Counter({"200": 10})


def test_the_first_request_goes_alone(tmp_path):
    provider = ScriptedProvider(delay=0.05)
    run(works(*(f"t{i}" for i in range(6))), provider, tmp_path, concurrency=6)
    assert provider.calls[0] == "t0"  # reading order, and nobody started beside it...
    assert provider.most_in_flight > 1  # ...until it was accepted, then the others went together


@pytest.mark.slow
def test_retryable_errors_are_retried_and_others_fail_the_chunk(tmp_path):
    script = {
        "flaky": [errors.ServerError("HTTP 503"), errors.NetworkError("reset")],
        "bad": [errors.ChunkRejected("HTTP 400")],
        "hopeless": [errors.ServerError("HTTP 500")] * 3,
    }
    provider = ScriptedProvider(script)
    items = works("fine", "flaky", "bad", "hopeless")
    outcome, _ = run(items, provider, tmp_path, retry=RetrySpec(attempts=3, max_seconds=60))
    status = {w.text: outcome.results[w.key] for w in items}
    assert status["fine"].status == "synthesized" and status["fine"].attempts == 1
    assert status["flaky"].status == "synthesized" and status["flaky"].attempts == 3
    assert (
        status["bad"].status == "failed" and status["bad"].attempts == 1 and "HTTP 400" in (status["bad"].error or "")
    )
    assert status["hopeless"].status == "failed" and status["hopeless"].attempts == 3
    assert outcome.retries == Counter({"server": 3, "network": 1})
    assert not TakeCache(tmp_path).has(items[2].key)  # a failed take is never cached


def test_a_fatal_error_stops_new_requests_and_keeps_what_is_done(tmp_path):
    provider = ScriptedProvider({"t0": [errors.AuthError("HTTP 401")]})
    items = works(*(f"t{i}" for i in range(5)))
    outcome, _ = run(items, provider, tmp_path)
    assert isinstance(outcome.fatal, errors.AuthError)
    assert provider.calls == ["t0"]  # the canary failed: nobody else was sent
    assert [outcome.results[w.key].status for w in items] == ["failed"] + ["skipped"] * 4


def test_nothing_to_do_touches_no_provider(tmp_path):
    provider = ScriptedProvider()
    outcome, seen = run([], provider, tmp_path)
    assert provider.calls == [] and not provider.closed and outcome.requests == 0 and seen == []


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def acquire_times(limiter: Limiter, clock: Clock, tokens: list[int]) -> list[float]:
    """When each acquire would be let through, advancing the fake clock by the sleeps it asks for."""
    times = []

    async def main() -> None:
        async def sleep(seconds: float) -> None:
            clock.now += seconds

        real = asyncio.sleep
        asyncio.sleep = sleep  # type: ignore[assignment]
        try:
            for n in tokens:
                await limiter.acquire(n)
                times.append(round(clock.now - 100.0, 6))
        finally:
            asyncio.sleep = real

    asyncio.run(main())
    return times


def test_limiter_spaces_requests_evenly_from_the_first():
    clock = Clock()
    assert acquire_times(Limiter(requests_per_minute=120, clock=clock), clock, [1] * 4) == [0.0, 0.5, 1.0, 1.5]


def test_limiter_paces_tokens():
    clock = Clock()
    times = acquire_times(Limiter(tokens_per_minute=600, clock=clock), clock, [10, 20, 10])
    assert times == [0.0, 1.0, 3.0]  # 10 tokens take a second of the budget, 20 take two


def test_a_rate_limit_pauses_everyone_and_slows_the_pace_which_recovers():
    clock = Clock()
    limiter = Limiter(requests_per_minute=60, clock=clock)
    limiter.rate_limited(retry_after=5.0)
    assert limiter.slowdowns == 1 and limiter.factor == pytest.approx(0.7)
    assert acquire_times(limiter, clock, [1]) == [5.0]  # held by the pause
    for _ in range(10):
        limiter.succeeded()
    assert limiter.factor == 1.0


def test_a_slow_down_from_the_provider_pauses_the_limiter(tmp_path):
    class Exhausted(ScriptedProvider):
        async def synthesize(self, text: str, sink: TakeSink, events: Events) -> None:
            events.slow_down(0.2, "requests exhausted")
            await super().synthesize(text, sink, events)

    limiter = Limiter()
    run(works("one"), Exhausted(), tmp_path, limiter=limiter)
    assert limiter.paused_until > 0


@pytest.mark.slow
def test_the_retry_budget_holds_at_wall_clock_time(tmp_path):
    # a server that asks for a 60 s wait: the chunk's 1 s budget ends the wait, not the server
    script = {"slow": [errors.RateLimited("HTTP 429", retry_after=60.0)] * 2}
    outcome, _ = run(works("slow"), ScriptedProvider(script), tmp_path, retry=RetrySpec(attempts=5, max_seconds=1))
    result = outcome.results[works("slow")[0].key]
    assert result.status == "failed" and result.error == "gave up after 1 s (retry.max_seconds)"
