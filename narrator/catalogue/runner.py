"""A catalogue: several books in one run, under one account's limits (``narrator run a.yaml b.yaml`` or
``narrator run catalogue.yaml``: a YAML file of ``jobs:``, paths or globs relative to it, and shared settings).

Every book is prepared and checked before anything is sent (its spec, sources, key, budgets), so a nightly run
that cannot finish says so at once. Then the books run side by side: books that name the same account share
one limiter at the slowest pace any of them declares, all of them share one concurrency budget, and free
request slots go to the earliest book first, so an early book assembles and encodes while later books are still
synthesized and the account never waits on an encoder. Each book keeps its own outputs, manifest and report;
the catalogue report sums them up and the run exits with the worst book's code.
"""

from __future__ import annotations

import glob
import os
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from ..core import errors
from ..core.fields import Range, Text
from ..core.records import REPORT, CatalogueAccount, CatalogueBook, CatalogueReport, Executor, Report, Stage
from ..job import yamlfile
from ..job.spec import Job
from ..job.specerrors import Problems
from ..run.diff import BookDiff
from ..run.engine import Book, prepare_books, run_books
from ..synthesis.proofs import proof_endpoint
from ..synthesis.scheduler import Limiter

CATALOGUE_REPORT = "catalogue-report.json"
ENCODED: tuple[Stage, ...] = ("encoding", "book_encoding", "remux")  # report.stage_runs that made a file


class CatalogueSpec(BaseModel):
    """A catalogue file's keys. Its limits, when given, win over every job's own."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    jobs: tuple[Text, ...] = Field(description="a list of job files or globs, relative to the catalogue file")
    requests_per_minute: Annotated[float, Range(0.1, 1e7)] | None = None
    tokens_per_minute: Annotated[float, Range(1, 1e10)] | None = None
    concurrency: Annotated[int, Range(1, 256, integer=True)] | None = None
    budget_usd: Annotated[float, Range(0, 1e9)] | None = None  # for the whole run: refused before any request
    ray: Text | None = None  # a Ray cluster's address (host:port) to run the books on (rayrun.py)


@dataclass(frozen=True)
class Catalogue:
    path: Path | None  # the catalogue file; None for job files given one by one
    job_files: tuple[Path, ...]
    settings: CatalogueSpec


def is_catalogue(path: Path) -> bool:
    """A YAML mapping with ``jobs:`` and no ``sources:``. Anything unreadable is left for load_job to report."""
    try:
        raw, _ = yamlfile.load(path.read_text(encoding="utf-8"), path)
    except (OSError, UnicodeDecodeError, errors.JobError):
        return False
    return isinstance(raw, dict) and "jobs" in raw and "sources" not in raw


def load_catalogue(files: Sequence[str]) -> Catalogue:
    """One catalogue file, or several job files (a catalogue with no settings of its own)."""
    if len(files) == 1 and is_catalogue(Path(files[0])):
        return _parse(Path(files[0]))
    return Catalogue(None, tuple(Path(f) for f in files), CatalogueSpec(jobs=()))


def _parse(path: Path) -> Catalogue:
    raw, lines = yamlfile.load(path.read_text(encoding="utf-8"), path)
    problems = Problems(path, lines)
    settings = None
    try:
        settings = CatalogueSpec.model_validate(raw)
    except ValidationError as exc:
        problems.add_all(exc, raw, CatalogueSpec)
    patterns = raw.get("jobs") if isinstance(raw.get("jobs"), list) else []
    found: dict[Path, None] = {}
    base = path.resolve().parent
    for i, pattern in enumerate(patterns):
        if not isinstance(pattern, str) or not pattern.strip():
            continue  # reported above
        matches = sorted(Path(m) for m in glob.glob(str(base / os.path.expanduser(pattern))))
        matches = [m for m in matches if m.resolve() != path.resolve()]  # `*.yaml` beside it: not itself
        if not matches:
            problems.add(f"jobs[{i}]", f"no job file matches {pattern!r}")
        for match in matches:
            if is_catalogue(match):
                problems.add(f"jobs[{i}]", f"{match} is a catalogue, not a job")
            found[match] = None
    if settings is not None and not settings.jobs:
        problems.add("jobs", "list at least one job file")
    if problems.problems or settings is None:
        raise errors.JobError(problems.problems)
    return Catalogue(path, tuple(found), settings)


def load_jobs(catalogue: Catalogue, load: Callable[[str], Job]) -> list[Job]:
    """Every job of the catalogue, with its shared settings; every problem of every job at once."""
    jobs: list[Job] = []
    problems: list[str] = []
    for job_file in catalogue.job_files:
        try:
            jobs.append(load(str(job_file)))
        except errors.JobError as exc:
            problems += exc.problems
    writers: dict[Path, Path] = {}
    for job in jobs:
        other = writers.setdefault(job.output.dir, job.path)
        if other != job.path:
            problems.append(f"{job.path}: output.dir: {job.output.dir} is also {other}'s; give each book its own")
    if problems:
        raise errors.JobError(problems)
    shared = catalogue.settings
    if shared.concurrency is not None:  # each book may use the whole budget when it has the slots
        jobs = [job.model_copy(update={"concurrency": shared.concurrency}) for job in jobs]
    return jobs


def accounts(books: Sequence[Book], settings: CatalogueSpec) -> dict[str, tuple[Limiter, list[Book]]]:
    """One limiter per account, at the smallest rate any of its books declares (never the sum): the account's
    limit is one limit however many books count against it. The catalogue's own rates win."""
    grouped: dict[str, list[Book]] = defaultdict(list)
    for book in books:
        grouped[book.script.provider.profile.account or f"book {book.index + 1}"].append(book)
    limiters = {}
    for account, members in grouped.items():
        rpm = settings.requests_per_minute or _smallest(b.job.requests_per_minute for b in members)
        tpm = settings.tokens_per_minute or _smallest(b.job.tokens_per_minute for b in members)
        limiters[account] = (Limiter(rpm, tpm), members)
    return limiters


def _smallest(values: Any) -> float | None:
    declared = [v for v in values if v is not None]
    return min(declared) if declared else None


def _key_variables(book: Book) -> list[str | None]:
    """The variables holding the keys a book's run needs: its voice's, and its transcription endpoint's."""
    job = book.job
    proof = proof_endpoint(job, job.proof)[1] if job.proof is not None else None
    return [book.script.provider.profile.key_env, proof]


def book_row(
    job: Job,
    diff: BookDiff | None,
    report: Report | None,
    relative_to: Path,
    refused: errors.NarratorError | None = None,
) -> CatalogueBook:
    """A book's line in the catalogue report (and the step summary), from its own report (or why it was not
    run: the catalogue was ``refused``)."""

    def rel(path: Path) -> str:
        return os.path.relpath(path, relative_to)

    changes = Counter(c.kind for chapter in (diff.chapters if diff else []) for c in chapter.changes)
    ran: dict[str, Any] = {"exit_code": errors.EXIT_INVALID, "message": "not run"}
    if refused is not None:
        ran = {"exit_code": refused.exit_code, "message": "not run: " + str(refused).splitlines()[0]}
    elif report is not None:
        ran = {
            "exit_code": report.exit_code,
            "message": report.message,
            "requests": report.requests,
            "rate_limited": report.rate_limited,
            "cost_usd": report.estimated_cost_usd.this_run,
            "files_encoded": sum(report.stage_runs.get(stage, 0) for stage in ENCODED),
            "outputs": [rel(job.output.dir / o) for o in report.outputs],
        }
    return CatalogueBook(
        job=rel(job.path),
        title=job.title or job.path.stem,
        output_dir=rel(job.output.dir),
        report=rel(job.output.dir / REPORT),
        changes=dict(sorted(changes.items())),
        takes_to_request=diff.requests if diff else 0,
        **ran,
    )


def read_report(job: Job, out_dir: Path | None = None) -> Report | None:
    """The report a job's last run left (in ``out_dir``: a sample's folder), or None."""
    try:
        return Report.model_validate_json(((out_dir or job.output.dir) / REPORT).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def catalogue_report(
    catalogue: Catalogue,
    jobs: Sequence[Job],
    books: Sequence[Book],
    limiters: dict[str, tuple[Limiter, list[Book]]],
    where: Path,
    seconds: float,
    refused: errors.NarratorError | None = None,
    executor: Executor | None = None,
) -> CatalogueReport:
    diffs = {b.job.path: b.diff for b in books}
    rows = [
        book_row(job, diffs.get(job.path), read_report(job) if refused is None else None, where, refused)
        for job in jobs
    ]
    worst = max([r.exit_code for r in rows] or [errors.EXIT_OK])
    failing = [r for r in rows if r.exit_code != errors.EXIT_OK]
    message = f"{len(rows)} book(s) done"
    if failing:
        message = f"{len(failing)} of {len(rows)} book(s) not done (first: {failing[0].job}: {failing[0].message})"
    settings = catalogue.settings
    return CatalogueReport(
        catalogue=os.path.relpath(catalogue.path, where) if catalogue.path else None,
        exit_code=worst,
        message=message,
        concurrency=settings.concurrency or max([j.concurrency for j in jobs] or [1]),
        budget_usd=settings.budget_usd,
        accounts=[
            CatalogueAccount(
                account=name, books=len(members), requests_per_minute=limiter.rpm, tokens_per_minute=limiter.tpm
            )
            for name, (limiter, members) in limiters.items()
        ],
        requests=sum(r.requests for r in rows),
        rate_limited=sum(r.rate_limited for r in rows),
        cost_usd=round(sum(r.cost_usd for r in rows), 4),
        books=rows,
        timings_seconds={"total": round(seconds, 3)},
        executor=executor or Executor(kind="local"),
    )


def run_catalogue(
    catalogue: Catalogue,
    jobs: Sequence[Job],
    report_path: Path,
    *,
    strict: bool = False,
    on_book: Callable[[Book], None] | None = None,
    ray: str | None = None,
) -> CatalogueReport:
    """Prepare, check and run every book, here or on the Ray cluster at ``ray``; the catalogue report is written
    whatever ends the run (a refusal, a signal), as each book's own report is."""
    started = time.monotonic()
    books: list[Book] = []
    limiters: dict[str, tuple[Limiter, list[Book]]] = {}
    refused: errors.NarratorError | None = None
    executor = Executor(kind="local")
    try:
        books = prepare_books(jobs, catalogue.settings.budget_usd, strict)
        limiters = accounts(books, catalogue.settings)
        if ray or catalogue.settings.ray:
            from ..run.rayrun import run_on_ray

            by_script = {id(b.script): b for b in books}
            names = sorted({env for b in books for env in _key_variables(b) if env})
            keys = {env: os.environ[env] for env in names if env in os.environ}
            groups = [(limiter, [b.script for b in members]) for limiter, members in limiters.values()]
            done = (lambda script: on_book(by_script[id(script)])) if on_book is not None else None
            executor = run_on_ray(ray or catalogue.settings.ray or "", groups, keys, strict, done)
        else:
            concurrency = catalogue.settings.concurrency or max(b.job.concurrency for b in books)
            run_books(list(limiters.values()), concurrency, strict, False, on_book)
    except errors.Refused as exc:
        refused = exc
        raise
    finally:
        report = catalogue_report(
            catalogue, jobs, books, limiters, report_path.parent, time.monotonic() - started, refused, executor
        )
        report.write(report_path)
    return report
