"""The one engine: prepare -> plan -> an executor carries the plan out -> records. A run of one book is a
catalogue of one: ``run_job`` (the CLI's ``narrator run job.yaml``) and a catalogue (catalogue/runner.py) both
prepare and check their books here, then run them side by side on this machine (local.py) or on a Ray cluster
(rayrun.py); each book's run (bookrun.py) makes its plan (work.py) and writes its records.

Callable from Python; the CLI is a thin layer over ``run_job`` here and ``make_plan`` in planning.py.
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from ..core import errors
from ..job.cast import write_missing_cast
from ..job.spec import Job
from ..synthesis.scheduler import Limiter, Pace, Slots
from ..synthesis.script import Sample, Script, prepare_script
from .bookrun import BookRun, RunResult
from .diff import BookDiff, diff_book
from .local import LocalExecutor
from .preflight import check_budget, check_key, check_review

__all__ = ["Book", "RunResult", "prepare_books", "run_books", "run_job"]


@dataclass(frozen=True)
class Book:
    index: int  # its place in the catalogue: free request slots go to the earliest book first
    job: Job
    script: Script
    diff: BookDiff | None  # what a run has to do, and its cost (a catalogue's books; None for a book alone)
    started: float  # when its preparation began (time.monotonic)


def prepare_books(
    jobs: Sequence[Job], budget_usd: float | None, strict: bool, sample: Sample | None = None
) -> list[Book]:
    """Every book read, chunked and checked: refused as a whole (nothing sent) for any book's problem, or when
    finishing them all would cost more than the catalogue's ``budget_usd``. ``sample``: only part of the book
    (one job), built in ``<output.dir>/sample/``."""
    started = time.monotonic()
    books: list[Book] = []
    found: list[errors.NarratorError] = []
    with ThreadPoolExecutor(os.cpu_count() or 1) as pool:
        alone = len(jobs) == 1
        for prepared in pool.map(lambda job: _prepare(job, strict, sample, alone), jobs):
            if isinstance(prepared, errors.NarratorError):
                found.append(prepared)
            else:
                script, diff = prepared
                books.append(Book(len(books), script.job, script, diff, started))
    total = sum(b.diff.cost_usd for b in books if b.diff)
    if not found and budget_usd is not None and total > budget_usd:
        found.append(
            errors.BudgetExceeded(
                f"budget_usd: finishing these {len(books)} books would cost about ${total:.2f}, over the catalogue's "
                f"budget of ${budget_usd:.2f}; nothing was sent (see `narrator diff`)"
            )
        )
    if len(found) == 1 and len(jobs) == 1:
        raise found[0]  # a book alone: its own error, as it is
    if found:
        raise errors.Refused(found)
    return books


def _prepare(
    job: Job, strict: bool, sample: Sample | None, alone: bool
) -> tuple[Script, BookDiff | None] | errors.NarratorError:
    """A book alone is checked for its budget and review in its own folder (bookrun.py), where its report says
    why it was refused; a catalogue's books, all before any book is run."""
    try:
        script = prepare_script(sample.job(job) if sample else job, sample)
        check_key(script)
        if sample is None and write_missing_cast(job, script.chapters, before=lambda: check_budget(script)):
            script = prepare_script(job)  # read in the voices of the cast the model just gave
        if alone:
            return script, None
        diff = diff_book(script.job, script)
        if job.budget_usd is not None:
            check_budget(script, diff.cost_usd)
        if strict:
            check_review(script)
        return script, diff
    except errors.NarratorError as exc:
        return exc


Accounts = Sequence[tuple[Limiter, Sequence[Book]]]  # the books, grouped by the account whose pace they share


def run_books(
    accounts: Accounts,
    concurrency: int,
    strict: bool,
    progress: bool | None = False,
    on_book: Callable[[Book], None] | None = None,
) -> dict[int, RunResult | errors.NarratorError]:
    """Every book side by side on this machine, by index: its result, or the error that ended it (its report says
    so). Books share ``concurrency`` requests in flight, and each account's limiter; free request slots go to the
    earliest book, so an early book is built while later ones are still synthesized."""
    runs = {book.index: BookRun(book.script, strict, book.started) for _, members in accounts for book in members}
    try:  # outside asyncio.run: a signal's exception may leave from the event loop rather than a book's coroutine
        return asyncio.run(_side_by_side(accounts, runs, concurrency, progress, on_book))
    except BaseException as exc:
        for run in runs.values():
            if not run.ended:
                run.interrupted(exc)
        raise


async def _side_by_side(
    accounts: Accounts,
    runs: dict[int, BookRun],
    concurrency: int,
    progress: bool | None,
    on_book: Callable[[Book], None] | None,
) -> dict[int, RunResult | errors.NarratorError]:
    slots = Slots(concurrency)
    claims: dict[str, asyncio.Future[None]] = {}  # a take two books share is made once
    # each book holds a thread for its back end while it waits for its chapters; preparing takes more
    loop = asyncio.get_running_loop()
    loop.set_default_executor(ThreadPoolExecutor(2 * len(runs) + 8, thread_name_prefix="narrator"))
    ended: dict[int, RunResult | errors.NarratorError] = {}

    async def one(book: Book, limiter: Limiter) -> None:
        run = runs[book.index]
        try:
            ended[book.index] = await run.carry_out(LocalExecutor(Pace(limiter, slots, book.index, claims), progress))
        except BaseException as exc:
            run.interrupted(exc)
            if not isinstance(exc, errors.NarratorError):
                raise  # a signal, or a bug: the whole run stops
            ended[book.index] = exc
        finally:
            if on_book is not None:
                on_book(book)

    await asyncio.gather(*(one(book, limiter) for limiter, members in accounts for book in members))
    return ended


def run_job(job: Job, *, progress: bool | None = None, strict: bool = False, sample: Sample | None = None) -> RunResult:
    """Do everything the job asks that is not already done: a catalogue of one. ``strict``: a build whose files
    fail the mastering preset's QA ends with exit 5, not 0. ``sample``: a quick listen to part of the book, built
    in ``<output.dir>/sample/``. A NarratorError says why the run ended early (its report says so too)."""
    [book] = prepare_books([job], None, strict, sample)
    limiter = Limiter(book.job.requests_per_minute, book.job.tokens_per_minute)
    ended = run_books([(limiter, [book])], book.job.concurrency, strict, progress)[book.index]
    if isinstance(ended, errors.NarratorError):
        raise ended
    return ended
