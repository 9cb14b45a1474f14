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
import shutil
import time
from collections.abc import Callable
from typing import Any

from ..build.chapters import ChapterInput, ChapterMade, build_chapter, chapter_input, chapter_pending
from ..build.fileplan import FilePlanner
from ..build.outputs import build_outputs
from ..build.stages import BuildResult, BuildSetting, settle, with_stages
from ..core import errors, workspace
from ..core.records import Executor
from ..synthesis.costs import run_cost
from ..synthesis.gate import ChapterGate
from ..synthesis.proofs import Proofreader
from ..synthesis.scheduler import Limiter, Pace
from ..synthesis.script import Script
from .bookrun import BookRun
from .local import LocalExecutor, synthesize_takes
from .work import BookPlan, Executed, RunLog


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
    """One book, inside a Ray task (its run: bookrun.py, as on one machine): its exit code and the nodes its tasks
    ran on (its own first). ``book``: the reference to the Script the driver prepared, in a list so that Ray hands
    it on unresolved to the chapters' tasks (nothing here reads the sources again)."""
    import ray

    os.environ.update(keys.values)  # this worker process's own environment, as the driver's held them
    script: Script = ray.get(book[0])
    executor = RayExecutor(book[0], Pace(SharedLimiter(actor, rpm, tpm)))  # its slots: this task's event loop's
    run = BookRun(script, strict, time.monotonic())
    try:
        code = asyncio.run(run.carry_out(executor)).exit_code
    except errors.NarratorError as exc:
        run.interrupted(exc)  # its report says why
        code = exc.exit_code
    return code, executor.nodes


class RayExecutor:
    """A book's plan carried out from its Ray task: its takes requested (at the account's pace, the actor's),
    then each chapter with something to make (its files, its segments of the M4B) a Ray task of its own, then the
    book joined here from what they made (the chapters assembled again for subtitles and QA, the M4B remuxed, the
    MP3 book fed). A chapter whose takes are not all stored is not built; the chapters that are, are built here."""

    def __init__(self, ref: Any, pace: Pace):
        import ray

        self.ref = ref  # the book as the driver prepared it, in the object store
        self.pace = pace
        self.nodes = [ray.get_runtime_context().get_node_id()]

    async def execute(self, plan: BookPlan, log: RunLog) -> Executed:
        script, proof = plan.script, None
        proofs = Proofreader(script, script.job.proof, lambda key: None) if script.job.proof is not None else None
        if proofs is not None:
            proofs.start(plan.cached)
        stored_by = proofs.stored if proofs is not None else None
        outcome = await synthesize_takes(script, plan.takes, self.pace, stored_by, progress=False)
        if proofs is not None:
            proof = await proofs.finish(LocalExecutor(self.pace).retakes(script), spent=run_cost(script, outcome))
            outcome = outcome.plus(proof.synthesis)
        log.synthesized(outcome)
        stored = script.cached_keys()
        missing = [step.waits_for - stored for step in plan.chapters]
        if any(missing):  # the run retries them next time; the chapters complete now are built
            gate = ChapterGate(missing)
            gate.close()
            built = await asyncio.to_thread(build_outputs, script, plan.previous, log.timings, None, gate)
            return Executed(outcome, built, frozenset({script.prepared}), proof)
        # here, not in a thread: Ray lends a task's CPU to others only while its main thread waits in ray.get
        made = self.build_chapters(plan)
        prebuilt = {path: fingerprint for chapter in made for path, fingerprint in chapter.files.items()}
        built = await asyncio.to_thread(build_outputs, script, plan.previous, log.timings, None, None, prebuilt)
        if isinstance(built, BuildResult):
            for chapter in made:
                built = with_stages(built, chapter.stage_seconds, chapter.stage_runs)
        return Executed(outcome, built, frozenset({script.prepared}), proof)

    def build_chapters(self, plan: BookPlan) -> list[ChapterMade]:
        """Each chapter with something to make, as a Ray task sent its slice of the book (build/chapters.py's
        ChapterInput) and the build's setting; this task, waiting in ray.get, lends them its CPU."""
        import ray

        script, planner = plan.script, FilePlanner(plan.script)
        pending = [i for i in range(len(script.chapters)) if chapter_pending(script, planner, plan.before, i)]
        if not pending:
            return []
        work_dir = workspace.work_dir(script.job.output.dir) / f"chapters-{os.getpid()}"  # the cover, for them
        work_dir.mkdir(parents=True, exist_ok=True)
        try:
            setting = settle(script, planner, plan.before, work_dir, while_synthesizing=False, stream_books=False)
            shared = ray.put(setting)
            task = ray.remote(max_retries=3)(build_chapter_task)
            made = ray.get([task.remote(shared, chapter_input(script, planner, i)) for i in pending])
        finally:
            shutil.rmtree(work_dir, ignore_errors=True)
        self.nodes += [node for _, node in made]
        return [chapter for chapter, _ in made]


def build_chapter_task(setting: BuildSetting, chapter: ChapterInput) -> tuple[ChapterMade, str]:
    """One chapter's files and segments, as a Ray task: what it made, and the node it ran on."""
    import ray

    return build_chapter(setting, chapter), ray.get_runtime_context().get_node_id()


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
