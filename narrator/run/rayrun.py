"""The catalogue on Ray: ``narrator run --ray ADDRESS catalogue.yaml`` (ADDRESS: the ``host:port`` that
``ray start --head`` prints), or ``ray: ADDRESS`` in the catalogue file. Optional (``pip install 'narrator[ray]'``):
nothing here imports Ray until a run asks for it.

The driver (the ``narrator`` process) prepares and checks every book as a local catalogue run does, then sends
each book to the cluster as one task, and keeps one limiter actor per account on its own node: every request of
every node asks it for its turn, so the cluster together keeps to the declared requests and tokens per minute.
A book's task requests its missing takes, then sends each chapter with something to make (its files, its
segments of the M4B) to the cluster as a task of its own, and last builds the book itself from what they made
(the chapters assembled again for subtitles and QA, the M4B remuxed, the MP3 book fed) and writes its manifest
and report. A node that dies takes its tasks with it; Ray runs them again elsewhere, and a task started again
takes the takes and segments already made from the cache and the store (shared: the same folder on one machine,
or ``cache: s3://...``). The API keys reach the tasks from the driver's own environment in the tasks' arguments,
held in memory (see Keys).

Every node needs narrator installed and the job files, sources and output folders at the same paths (a shared
file system).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import random
import time
from collections.abc import Callable
from typing import Any

from ..build.stages import PriorWork
from ..core import errors
from ..core.records import Executor
from ..synthesis.scheduler import Limiter, Pace
from ..synthesis.script import Script


class AccountPace:
    """The account's pace, as a Ray actor (one per account, on the driver's node): Limiter's arithmetic on the
    wall clock, which every node of one cluster shares (on one machine exactly; across machines, as NTP keeps it)."""

    def __init__(self, rpm: float | None, tpm: float | None):
        self.limiter = Limiter(rpm, tpm, clock=time.time)

    def reserve(self, tokens: int) -> float:
        """When (wall clock) a request of ``tokens`` may be sent: spaced evenly, after any pause."""
        return self.limiter.reserve(tokens)

    def paused_until(self) -> float:
        return self.limiter.paused_until

    def pause(self, seconds: float) -> None:
        self.limiter.pause(seconds)

    def rate_limited(self, retry_after: float | None) -> None:
        self.limiter.rate_limited(retry_after if retry_after is not None else 1.0 + random.random())

    def succeeded(self) -> None:
        self.limiter.succeeded()


class SharedLimiter(Limiter):
    """A Limiter whose pace is an AccountPace actor's: what a book's workers use inside a Ray task."""

    def __init__(self, actor: Any, rpm: float | None, tpm: float | None):
        super().__init__(rpm, tpm, clock=time.time)
        self.actor = actor

    async def acquire(self, tokens: int) -> None:
        start = await self.actor.reserve.remote(tokens)
        if (delay := start - time.time()) > 0:
            await asyncio.sleep(delay)
        while (remaining := await self.actor.paused_until.remote() - time.time()) > 0:
            await asyncio.sleep(remaining)

    def pause(self, seconds: float) -> None:
        self.actor.pause.remote(seconds)

    def rate_limited(self, retry_after: float | None) -> None:
        self.slowdowns += 1
        self.actor.rate_limited.remote(retry_after)

    def succeeded(self) -> None:
        self.actor.succeeded.remote()


class Keys:
    """The API keys a book's task needs, carried in its arguments (memory), shown as nothing if printed. Not in
    ``runtime_env.env_vars``: Ray's runtime-env agent writes those to its log file (measured, Ray 2.60)."""

    def __init__(self, values: dict[str, str]):
        self.values = values

    def __repr__(self) -> str:
        return f"Keys({', '.join(self.values)})"


def run_book(
    book: list[Any], strict: bool, actor: Any, rpm: float | None, tpm: float | None, keys: Keys
) -> tuple[int, list[str]]:
    """One book, inside a Ray task: its exit code and the nodes its tasks ran on (its own first). ``book``: the
    reference to the Script the driver prepared, in a list so that Ray hands it on unresolved to the chapters'
    tasks (nothing here reads the sources again)."""
    import ray

    from .pipeline import run_job_async

    os.environ.update(keys.values)  # this worker process's own environment, as the driver's held them
    script: Script = ray.get(book[0])
    nodes = [ray.get_runtime_context().get_node_id()]
    try:  # one Pace an event loop: its slots belong to the loop they are made in
        prior = _chapters_on_ray(book[0], script, Pace(SharedLimiter(actor, rpm, tpm)), nodes)
        pace = Pace(SharedLimiter(actor, rpm, tpm))
        run = run_job_async(script.job, progress=False, strict=strict, script=script, pace=pace, prior=prior)
        code = asyncio.run(run).exit_code
    except errors.NarratorError as exc:  # its report says why
        code = exc.exit_code
    return code, nodes


def _chapters_on_ray(ref: Any, script: Script, pace: Pace, nodes: list[str]) -> PriorWork:
    """The book's missing takes, then each chapter with something to make as a Ray task: what was requested,
    and the chapter files the tasks made. No chapter task if some take could not be made: the book's run retries
    it and says what happened."""
    import ray

    from ..build.chapters import chapter_pending
    from ..build.fileplan import FilePlanner
    from ..core.records import MANIFEST, read_manifest
    from ..synthesis.gate import ChapterGate
    from .pipeline import synthesize_takes
    from .preflight import check_key

    check_key(script)
    script.cache.ready(script.keys.values())
    cached = script.cached_keys()
    reused = sum(1 for c in script.chunks if script.keys[c.id] in cached)
    outcome = asyncio.run(synthesize_takes(script, cached, reused, pace, False, ChapterGate(script, cached)))
    prior = PriorWork(outcome)
    if not set(script.keys.values()) <= script.cached_keys():
        return prior
    last = read_manifest(script.job.output.dir / MANIFEST)
    before = last.fingerprints if last else {}
    planner = FilePlanner(script)
    chapter = ray.remote(max_retries=3)(build_chapter_task)
    pending = [i for i in range(len(script.chapters)) if chapter_pending(script, planner, before, i)]
    for made, node in ray.get([chapter.remote(ref, before, i) for i in pending]):
        # a task waiting in ray.get lends its CPU to the chapters' tasks
        prior.add_chapter(made)
        nodes.append(node)
    return prior


def build_chapter_task(script: Script, before: dict[str, str], index: int) -> tuple[PriorWork, str]:
    """One chapter's files and segments, as a Ray task: what it made, and the node it ran on."""
    import ray

    from ..build.chapters import build_chapter

    return build_chapter(script, before, index), ray.get_runtime_context().get_node_id()


def run_on_ray(
    address: str,
    accounts: list[tuple[Limiter, list[Script]]],
    keys: dict[str, str],
    strict: bool,
    on_book: Callable[[Script], None] | None = None,
) -> Executor:
    """Every book (as the driver prepared it) a task on the cluster at ``address``, paced by its account's
    limiter; ``keys``: the API keys the books need, by variable name. Returns where the work ran (the report's
    ``executor``)."""
    try:
        import ray
        from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy
    except ImportError:
        raise errors.JobError(["--ray needs the ray extra: pip install 'narrator[ray]'"]) from None
    try:
        ray.init(address=address, log_to_driver=False, logging_level=logging.ERROR)
    except (ConnectionError, RuntimeError, ValueError) as exc:
        raise errors.JobError([f"--ray {address}: cannot join the cluster: {str(exc).splitlines()[0]}"]) from None
    try:
        here = NodeAffinitySchedulingStrategy(ray.get_runtime_context().get_node_id(), soft=False)
        pace = ray.remote(num_cpus=0)(AccountPace)
        task = ray.remote(max_retries=3)(run_book)
        alive: list[Any] = [n for n in ray.nodes() if n.get("Alive")]  # type: ignore[no-untyped-call]  # ray: untyped
        nodes = len(alive)
        running = {}
        secrets = Keys(keys)
        for limiter, scripts in accounts:
            actor = pace.options(scheduling_strategy=here).remote(limiter.rpm, limiter.tpm)
            for script in scripts:
                book = [ray.put(script)]  # once in the object store, for the book's task and its chapters'
                running[task.remote(book, strict, actor, limiter.rpm, limiter.tpm, secrets)] = script
        ran_on: list[str] = []
        pending = list(running)
        while pending:
            done, pending = ray.wait(pending, num_returns=1)
            for ref in done:
                # retries spent: its report (if it got so far) says what happened
                with contextlib.suppress(ray.exceptions.RayError):
                    ran_on += ray.get(ref)[1]
                if on_book is not None:
                    on_book(running[ref])
    finally:
        ray.shutdown()
    # tasks: the books' and their chapters' (as many as finished)
    return Executor(kind="ray", nodes=nodes, nodes_used=len(set(ran_on)), tasks=max(len(ran_on), len(running)))
