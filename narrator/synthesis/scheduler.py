"""Synthesize every missing take concurrently: workers, one shared limiter, retries by error class.

A fatal provider error (bad key, unknown model, quota) stops new requests at once; requests already
in flight finish and are cached, so the run stays resumable.
"""

from __future__ import annotations

import asyncio
import contextlib
import heapq
import itertools
import random
import time
from collections import Counter
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass, field

from tenacity import (
    AsyncRetrying,
    RetryCallState,
    retry_if_exception,
    stop_after_attempt,
    stop_after_delay,
    wait_exponential_jitter,
)

from ..core.errors import FatalProviderError, ProviderError, RateLimited
from ..core.records import TakeOutcome
from ..job.spec import RetrySpec
from ..providers.base import Provider
from .cache import PendingTake, TakeCache
from .commits import Commits


@dataclass(frozen=True)
class Work:
    """One take to make: every chunk with this cache key shares it."""

    key: str
    text: str
    tokens: int
    provider: Provider  # the voice that reads it


@dataclass
class TakeResult:
    # skipped: not attempted (the run stopped first); cached: made meanwhile by another book or runner (not
    # requested)
    status: TakeOutcome
    attempts: int = 0
    duration: float = 0.0
    error: str | None = None


@dataclass
class SynthesisOutcome:
    results: dict[str, TakeResult] = field(default_factory=dict)
    retries: Counter[str] = field(default_factory=Counter)  # by cause
    responses: Counter[str] = field(default_factory=Counter)  # by status, as the provider saw them
    requests: int = 0
    fatal: FatalProviderError | None = None
    seconds: float = 0.0
    rate_limited: int = 0  # 429s that slowed the pace (the limiter's count is its account's, maybe shared)

    def plus(self, more: SynthesisOutcome) -> SynthesisOutcome:
        """This outcome and ``more`` (later requests of the same run: proof-listening's retakes) as one."""
        return SynthesisOutcome(
            {**self.results, **more.results},
            self.retries + more.retries,
            self.responses + more.responses,
            self.requests + more.requests,
            self.fatal or more.fatal,
            self.seconds + more.seconds,
            self.rate_limited + more.rate_limited,
        )


class Limiter:
    """Requests and tokens per minute, shared by every worker.

    Requests are spaced evenly (a leaky bucket) rather than sent in bursts, so a server-side limit of
    the same rate is never crossed. A rate-limit 429 pauses everyone for its Retry-After and lowers the
    pace; successes bring the pace back gradually. With no declared rate, only the pauses apply.
    """

    def __init__(
        self,
        requests_per_minute: float | None = None,
        tokens_per_minute: float | None = None,
        clock: Callable[[], float] = time.monotonic,
    ):
        self.rpm = requests_per_minute
        self.tpm = tokens_per_minute
        self.clock = clock
        self.factor = 1.0  # share of the declared pace in force now
        self.next_request = 0.0
        self.next_tokens = 0.0
        self.paused_until = 0.0
        self.slowdowns = 0
        self._lock = asyncio.Lock()

    def reserve(self, tokens: int) -> float:
        """The next turn for a request of ``tokens``, on this limiter's clock; the one after it moves on."""
        start = max(self.clock(), self.paused_until)
        if self.rpm:
            start = max(start, self.next_request)
            self.next_request = start + 60.0 / (self.rpm * self.factor)
        if self.tpm:
            start = max(start, self.next_tokens)
            self.next_tokens = start + 60.0 * tokens / (self.tpm * self.factor)
        return start

    async def acquire(self, tokens: int) -> None:
        async with self._lock:
            start = self.reserve(tokens)
        delay = start - self.clock()
        if delay > 0:
            await asyncio.sleep(delay)
        # a pause declared while we slept holds us too
        while (remaining := self.paused_until - self.clock()) > 0:
            await asyncio.sleep(remaining)

    def pause(self, seconds: float) -> None:
        """Everyone waits: the server asked for it (429 Retry-After, or its remaining quota is zero)."""
        self.paused_until = max(self.paused_until, self.clock() + seconds)

    def rate_limited(self, retry_after: float | None) -> None:
        self.slowdowns += 1
        self.factor = max(0.1, self.factor * 0.7)
        self.pause(retry_after if retry_after is not None else 1.0 + random.random())

    def succeeded(self) -> None:
        if self.factor < 1.0:
            self.factor = min(1.0, self.factor + 0.05)


class Slots:
    """Requests in flight, shared by every book of a catalogue (one concurrency budget). A free slot goes to the
    waiting request with the lowest ``priority`` (a book's place in the catalogue), so books are synthesized in
    order: an early book's takes are all stored, and its back end at work, while later books still synthesize."""

    def __init__(self, size: int):
        self.free = size
        self._waiting: list[tuple[int, int, asyncio.Future[None]]] = []
        self._arrival = itertools.count()  # first come, first served within one priority

    @contextlib.asynccontextmanager
    async def slot(self, priority: int = 0) -> AsyncIterator[None]:
        await self._acquire(priority)
        try:
            yield
        finally:
            self._release()

    async def _acquire(self, priority: int) -> None:
        if self.free > 0 and not self._waiting:
            self.free -= 1
            return
        waiter = asyncio.get_running_loop().create_future()
        heapq.heappush(self._waiting, (priority, next(self._arrival), waiter))
        try:
            await waiter
        except asyncio.CancelledError:
            if waiter.done() and not waiter.cancelled():  # handed a slot, then cancelled before using it
                self._release()
            raise

    def _release(self) -> None:
        while self._waiting:
            _, _, waiter = heapq.heappop(self._waiting)
            if not waiter.done():  # a cancelled waiter stays in the heap until it comes up here
                waiter.set_result(None)
                return
        self.free += 1


@dataclass
class Pace:
    """What a run's requests share with other runs' (a catalogue's books): its account's limiter, the requests in
    flight, and its place in line for them."""

    limiter: Limiter
    slots: Slots | None = None
    priority: int = 0
    claims: dict[str, asyncio.Future[None]] | None = None  # takes being made by any of the runs


class RunEvents:
    """What the provider reports while it works, wired to the run: a slow-down pauses every worker, the first
    acceptance releases the workers held behind the canary, responses are counted for the report."""

    def __init__(self, limiter: Limiter, responses: Counter[str]):
        self.limiter = limiter
        self.responses = responses
        self.first_accepted = asyncio.Event()

    def accepted(self) -> None:
        self.first_accepted.set()

    def slow_down(self, seconds: float, cause: str) -> None:
        self.limiter.pause(seconds)

    def response(self, status: str) -> None:
        self.responses[status] += 1


def _wait(retry_state: RetryCallState) -> float:
    """Honour the server's Retry-After (any length: a batch job waits rather than fails), with a little
    jitter so the workers do not return in lockstep; otherwise exponential backoff with jitter."""
    exc = retry_state.outcome.exception() if retry_state.outcome else None
    if isinstance(exc, ProviderError) and exc.retry_after is not None:
        return exc.retry_after + random.uniform(0, 0.1 + 0.1 * exc.retry_after)
    return wait_exponential_jitter(multiplier=0.5, max=30.0, jitter=1.0)(retry_state)


async def synthesize_all(
    work: Sequence[Work],
    cache: TakeCache,
    *,
    concurrency: int,
    limiter: Limiter,
    retry: RetrySpec,
    on_take: Callable[[str, TakeResult], None] | None = None,
    slots: Slots | None = None,
    priority: int = 0,
    claims: dict[str, asyncio.Future[None]] | None = None,
) -> SynthesisOutcome:
    """Make every take of ``work`` (in reading order) that the run gets to; each result is in the outcome, and
    ``on_take`` hears of each as it is stored, fails or is skipped. ``slots`` (with this run's ``priority``) are
    the requests in flight this run shares with others (a catalogue's books); by default, ``concurrency`` of its
    own."""
    shared = claims if claims is not None else {}
    run = _Synthesis(work, cache, limiter, retry, on_take, slots or Slots(concurrency), priority, shared)
    if work:  # everything cached: do not load a model or open a connection for nothing
        await run.run(concurrency)
    return run.outcome


class _Synthesis:
    def __init__(
        self,
        work: Sequence[Work],
        cache: TakeCache,
        limiter: Limiter,
        retry: RetrySpec,
        on_take: Callable[[str, TakeResult], None] | None,
        slots: Slots,
        priority: int,
        claims: dict[str, asyncio.Future[None]],
    ) -> None:
        self.slots, self.priority = slots, priority
        self.claims = claims  # takes being made, by key: shared by a catalogue's books
        self.queue = list(reversed(work))  # pop() from the end keeps reading order
        self.cache, self.limiter, self.retry, self.on_take = cache, limiter, retry, on_take
        self.outcome = SynthesisOutcome()
        self.events = RunEvents(limiter, self.outcome.responses)
        self.commits = Commits()
        self.stop = asyncio.Event()

    async def run(self, concurrency: int) -> None:
        started = time.monotonic()
        providers = list({id(w.provider): w.provider for w in self.queue}.values())
        try:
            first = await self.canary()
            workers = max(1, min(concurrency, len(self.queue)))
            tasks = [first, *(asyncio.create_task(self.worker()) for _ in range(workers))]
            try:
                await asyncio.gather(*tasks)
            except BaseException:  # the others stopped and awaited here: none is left to fail after the run
                for task in tasks:
                    task.cancel()
                await asyncio.gather(*tasks, return_exceptions=True)
                raise
        finally:
            await self.commits.drain()  # every finished take reaches the cache, whatever stopped the run
            for provider in providers:
                await provider.aclose()
        for item in self.queue:  # never started because the run stopped
            self.outcome.results[item.key] = TakeResult("skipped")
        self.outcome.seconds = time.monotonic() - started

    async def canary(self) -> asyncio.Task[None]:
        """The first request goes alone: a bad key, an unknown model or an empty balance then costs one request,
        not one per worker. The others start as soon as it is accepted (its status line), or done, whichever
        comes first: a long take streams for a minute after its 200."""
        first = asyncio.create_task(self.handle_alone(self.queue.pop()))
        waiting = asyncio.create_task(self.events.first_accepted.wait())
        await asyncio.wait({first, waiting}, return_when=asyncio.FIRST_COMPLETED)
        waiting.cancel()
        return first

    async def handle_alone(self, item: Work) -> None:
        async with self.slots.slot(self.priority):
            await self.handle(item)

    async def worker(self) -> None:
        # a worker keeps its slot while its run has work (through a retry's wait, too): a slot passes to the next
        # book only when this one has nothing left to start, so books are synthesized in order
        async with self.slots.slot(self.priority):
            while self.queue and not self.stop.is_set():
                await self.handle(self.queue.pop())

    async def handle(self, item: Work) -> None:
        while (other := self.claims.get(item.key)) is not None:  # another book of this run is making it
            await asyncio.wait({other})
        if self.cache.has(item.key):  # made since the run began (by another book, another runner): not again
            self.record(item.key, TakeResult("cached"))
            return
        claim = self.claims[item.key] = asyncio.get_running_loop().create_future()
        try:
            # the retry budget holds at wall-clock time too, whatever an attempt or a server's Retry-After does
            try:
                taken = await asyncio.wait_for(self.make(item), self.retry.max_seconds)
            except asyncio.TimeoutError:
                taken = TakeResult("failed", error=f"gave up after {self.retry.max_seconds:g} s (retry.max_seconds)")
            if taken is not None:
                self.record(item.key, taken)
        finally:
            if (committing := self.commits.pop(item.key)) is not None:  # claimed until it is in the cache
                committing.add_done_callback(lambda _: self._release(item.key, claim))
            else:
                self._release(item.key, claim)

    def _release(self, key: str, claim: asyncio.Future[None]) -> None:
        if self.claims.get(key) is claim:
            del self.claims[key]
        if not claim.done():
            claim.set_result(None)

    async def make(self, item: Work) -> TakeResult | None:
        """None once the take is on its way into the cache (see commit); otherwise why not."""
        attempts = 0
        try:
            async for attempt in self.retrying():
                with attempt:
                    if self.stop.is_set():
                        return TakeResult("skipped", attempts)
                    await self.limiter.acquire(item.tokens)
                    attempts += 1
                    self.outcome.requests += 1
                    take = await self.attempt(item)
        except FatalProviderError as exc:
            if self.outcome.fatal is None:
                self.outcome.fatal = exc
            self.stop.set()
            return TakeResult("failed", attempts, error=str(exc))
        except ProviderError as exc:
            return TakeResult("failed", attempts, error=str(exc))
        # made visible in the cache off the worker's path: fsync must not delay its next request
        self.commits.start(item.key, self.commit(item.key, take, attempts))
        return None

    def retrying(self) -> AsyncRetrying:
        def count(state: RetryCallState) -> None:
            exc = state.outcome.exception() if state.outcome else None
            self.outcome.retries[getattr(exc, "cause", "error")] += 1

        return AsyncRetrying(
            retry=retry_if_exception(lambda e: isinstance(e, ProviderError) and e.retryable),
            stop=stop_after_attempt(self.retry.attempts) | stop_after_delay(self.retry.max_seconds),
            wait=_wait,
            before_sleep=count,
            reraise=True,
        )

    async def attempt(self, item: Work) -> PendingTake:
        take = self.cache.pending(item.key)  # the body streams to disk: no take is held in memory
        try:
            await item.provider.synthesize(item.text, take, self.events)
        except BaseException as exc:
            take.discard()  # a failed or cut body is never cached
            if isinstance(exc, RateLimited):
                self.outcome.rate_limited += 1
                self.limiter.rate_limited(exc.retry_after)
            raise
        self.limiter.succeeded()
        return take

    async def commit(self, key: str, take: PendingTake, attempts: int) -> None:
        await self.commits.run(take.commit)  # a take counts as done once it is on disk
        self.record(key, TakeResult("synthesized", attempts, take.duration))

    def record(self, key: str, taken: TakeResult) -> None:
        self.outcome.results[key] = taken
        if self.on_take is not None:
            self.on_take(key, taken)
