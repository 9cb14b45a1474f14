"""The command line: a thin layer over the library, its commands here. How a command ends (a user's mistake is one
line and an exit code; a signal stops ffmpeg too) is in exits.py."""

from __future__ import annotations

import json
import logging
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from ..core import errors
from ..providers import PROVIDERS, provider_kind
from ..text.normalise import plain
from . import exits

if TYPE_CHECKING:
    from ..core.records import Report
    from ..synthesis.script import Sample


class _Commands(click.Group):
    """Lists each command with its help's whole first sentence (click cuts it at the terminal's width, so
    ``narrator --help`` showed "What changed since the last build, and what a run would do:...")."""

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        rows = []
        for name in self.list_commands(ctx):
            command = self.get_command(ctx, name)
            if command is not None and not command.hidden:
                rows.append((name, command.get_short_help_str(limit=10_000)))
        if rows:
            with formatter.section("Commands"):
                formatter.write_dl(rows)


@click.group(cls=_Commands, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="narrator")
@click.option("-v", "--verbose", count=True, help="More log lines (-vv for debugging).")
def main(verbose: int) -> None:
    """narrator: turn books and articles into finished audiobooks."""
    level = logging.WARNING - 10 * verbose
    logging.basicConfig(level=max(level, logging.DEBUG), format="%(levelname)s %(name)s: %(message)s")


@main.command()
@click.argument("job_files", nargs=-1, required=True, type=click.Path(dir_okay=False))
@exits.handles_errors
def validate(job_files: tuple[str, ...]) -> None:
    """Check job specs (or a catalogue and its jobs) and their files; no synthesis."""
    from ..catalogue.runner import load_catalogue, load_jobs

    catalogue = load_catalogue(job_files)
    for job in load_jobs(catalogue, exits.load):
        click.echo(f"{os.path.relpath(job.path)}: ok ({len(job.sources)} source(s), provider {job.voice.provider})")
    if catalogue.path is not None:
        click.echo(f"{catalogue.path}: ok (a catalogue of {len(catalogue.job_files)} job(s))")


def _sample(chapters: str | None, minutes: float | None) -> Sample | None:
    """``--chapters 1-3,Epilogue`` and ``--sample MINUTES``: a quick listen, or None for the whole book."""
    from ..synthesis.script import Sample

    if chapters is None and minutes is None:
        return None
    if minutes is not None and minutes <= 0:
        raise errors.JobError([f"--sample: must be more than 0 minutes, got {minutes:g}"])
    choices = [int(c) if c.strip().isdigit() else c.strip() for c in (chapters or "").split(",") if c.strip()]
    return Sample(tuple(choices) or None, minutes)


def sample_options(fn: Callable[..., Any]) -> Callable[..., Any]:
    fn = click.option("--sample", "minutes", type=float, help="Only about the first MINUTES of speech.")(fn)
    return click.option("--chapters", help='Only these chapters of the book: "1-3,5" or titles, comma-separated.')(fn)


@main.command()
@click.argument("job_files", nargs=-1, required=True, type=click.Path(dir_okay=False))
@click.option("--progress/--no-progress", default=None, help="Progress bar (default: only on a terminal).")
@click.option("--strict", is_flag=True, help="Exit 5 when a file fails the mastering preset's QA.")
@click.option("--junit", type=click.Path(dir_okay=False), help="Also write the run as JUnit XML, for CI.")
@click.option(
    "--report",
    "report_file",
    type=click.Path(dir_okay=False),
    help="Several jobs or a catalogue: where the catalogue report goes (default catalogue-report.json).",
)
@click.option("--ray", "ray_address", metavar="ADDRESS", help="Run the books on this Ray cluster (host:port).")
@sample_options
@exits.handles_errors
def run(
    job_files: tuple[str, ...],
    progress: bool | None,
    strict: bool,
    junit: str | None,
    report_file: str | None,
    ray_address: str | None,
    chapters: str | None,
    minutes: float | None,
) -> None:
    """Do everything not already done; print where the results are. With --chapters or --sample, a quick listen
    to part of the book, built in OUTPUT_DIR/sample/ (the full build is left as it is). Several job files, or a
    catalogue file (jobs: and shared limits), run as one catalogue under one account's limits.

    Exit codes: 0 all done, 1 some chunks failed, 2 invalid job or usage, 3 fatal provider error, 4 over the
    budget, 5 --strict and QA failed, 130/143 stopped by a signal (a catalogue: its worst book's)."""
    from ..catalogue.runner import is_catalogue

    if len(job_files) == 1 and not is_catalogue(Path(job_files[0])) and not ray_address:
        _run_one(job_files[0], progress, strict, junit, _sample(chapters, minutes))
    elif chapters is not None or minutes is not None:
        raise errors.JobError(["--chapters and --sample take one job file, not a catalogue"])
    else:
        _run_catalogue(job_files, progress, strict, junit, report_file, ray_address)


def _run_one(job_file: str, progress: bool | None, strict: bool, junit: str | None, sample: Sample | None) -> None:
    from ..catalogue.runner import book_row, read_report
    from ..catalogue.summary import append_step_summary
    from ..core.records import MANIFEST, REPORT
    from ..run.engine import run_job

    job = exits.load(job_file)
    exits.stop_on_signals()
    result = run_job(job, progress=progress, strict=strict, sample=sample)
    c = result.counts
    click.echo(
        f"{sum(c.values())} chunks: {c['synthesized']} synthesized, {c['cached']} reused from the cache, "
        f"{c['failed']} failed, {c['pending']} not started",
        err=True,
    )
    for path in result.outputs:
        click.echo(plain(str(path)))
    click.echo(f"manifest: {result.output_dir / MANIFEST}", err=True)
    click.echo(f"report:   {result.output_dir / REPORT}", err=True)
    report = read_report(job, result.output_dir)
    if junit:
        _write_junit(Path(junit), [(job_file, result.output_dir, report)])
    if report is not None:
        append_step_summary([book_row(job, None, report, Path.cwd())])
    if result.exit_code != errors.EXIT_OK:
        click.echo(f"error: {plain(result.message)}", err=True)
    sys.exit(result.exit_code)


def _run_catalogue(
    job_files: tuple[str, ...],
    progress: bool | None,
    strict: bool,
    junit: str | None,
    report_file: str | None,
    ray_address: str | None,
) -> None:
    from tqdm import tqdm

    from ..catalogue.runner import CATALOGUE_REPORT, load_catalogue, load_jobs, read_report, run_catalogue
    from ..catalogue.summary import append_step_summary
    from ..run.engine import Book

    catalogue = load_catalogue(job_files)
    jobs = load_jobs(catalogue, exits.load)
    exits.stop_on_signals()
    show = sys.stderr.isatty() if progress is None else progress
    with tqdm(total=len(jobs), unit="book", desc="books", disable=not show, dynamic_ncols=True) as bar:

        def finished(book: Book) -> None:
            done = read_report(book.job)
            line = f"{os.path.relpath(book.job.path)}: {done.message if done else 'no report'}"
            bar.write(plain(line), file=sys.stderr)
            bar.update()

        path = Path(report_file or CATALOGUE_REPORT)
        report = run_catalogue(catalogue, jobs, path, strict=strict, on_book=finished, ray=ray_address)
    for book in report.books:
        for output in book.outputs:
            click.echo(plain(output))
    click.echo(f"catalogue report: {path}", err=True)
    if junit:
        _write_junit(Path(junit), [(str(j.path), j.output.dir, read_report(j)) for j in jobs])
    append_step_summary(report.books, f"narrator: {catalogue.path.name if catalogue.path else 'catalogue'}")
    if report.exit_code != errors.EXIT_OK:
        click.echo(f"error: {plain(report.message)}", err=True)
    sys.exit(report.exit_code)


def _write_junit(path: Path, books: list[tuple[str, Path, Report | None]]) -> None:
    from ..catalogue.junit import write_junit
    from ..core.records import MANIFEST, read_manifest

    suites = []
    for job_file, out_dir, report in books:
        manifest = read_manifest(out_dir / MANIFEST)
        if manifest is not None and report is not None:
            suites.append((manifest, report, job_file))
    write_junit(path, suites)


@main.command()
@click.argument("job_file", type=click.Path(dir_okay=False))
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@sample_options
@exits.handles_errors
def plan(job_file: str, as_json: bool, chapters: str | None, minutes: float | None) -> None:
    """Chapters, chunks, tokens, what is cached, estimated length, cost and time. No synthesis. With --chapters
    or --sample: what `run` with the same options would do."""
    from ..run.planning import make_plan, render_plan
    from ..synthesis.script import prepare_script

    job = exits.load(job_file)
    sample = _sample(chapters, minutes)
    plan = make_plan(job, prepare_script(job, sample) if sample else None)
    click.echo(json.dumps(plan.to_json(), indent=2) if as_json else plain(render_plan(plan)))


@main.command()
@click.argument("job_files", nargs=-1, required=True, type=click.Path(dir_okay=False))
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@click.option("--check", is_flag=True, help="Exit 1 while a run has work to do, 0 when the book is up to date.")
@exits.handles_errors
def diff(job_files: tuple[str, ...], as_json: bool, check: bool) -> None:
    """What changed since the last build, and what a run would do: takes to request, cost, files to encode. Of
    several jobs or a catalogue: each book's, and the totals."""
    from ..catalogue.runner import is_catalogue, load_catalogue, load_jobs
    from ..run.diff import diff_book, render_diff

    if len(job_files) == 1 and not is_catalogue(Path(job_files[0])):
        result = diff_book(exits.load(job_files[0]))
        click.echo(json.dumps(result.to_json(), indent=2) if as_json else plain(render_diff(result)))
        sys.exit(1 if check and result.pending else 0)
    jobs = load_jobs(load_catalogue(job_files), exits.load)
    books = [(os.path.relpath(job.path), diff_book(job)) for job in jobs]
    if as_json:
        click.echo(
            json.dumps(
                {
                    "requests": sum(d.requests for _, d in books),
                    "cost_usd": round(sum(d.cost_usd for _, d in books), 4),
                    "books": [{"job": name, **d.to_json()} for name, d in books],
                },
                indent=2,
            )
        )
    else:
        for name, book in books:
            click.echo(plain(f"{name}: " + render_diff(book).replace("\n", "\n  ")))
    sys.exit(1 if check and any(d.pending for _, d in books) else 0)


@main.command()
@click.argument("job_file", type=click.Path(dir_okay=False))
@click.option("--port", type=int, default=0, help="The port to serve on (default: any free one).")
@click.option("--host", default="127.0.0.1", help="The address to bind (default 127.0.0.1: this machine only).")
@click.option("--open", "open_browser", is_flag=True, help="Open the page in a browser.")
@exits.handles_errors
def review(job_file: str, port: int, host: str, open_browser: bool) -> None:
    """The editor's page for the job: hear each take beside its text, approve, reject, fix and regenerate.
    Prints its URL (with the access token) and serves until Ctrl-C."""
    from ..review.server import serve, url

    job = exits.load(job_file)
    if host not in ("127.0.0.1", "localhost", "::1"):
        click.echo(f"warning: serving on {host}: anyone who can reach it and has the URL can spend money", err=True)
    server = serve(job, host, port)
    click.echo(url(server), nl=True)
    sys.stdout.flush()
    if open_browser:
        import webbrowser

        webbrowser.open(url(server))
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        server.server_close()


@main.command()
@click.argument("job_file", type=click.Path(dir_okay=False))
@click.option("--rejected", is_flag=True, help="Every take rejected in the review file.")
@click.option("--chunk", "chunk_ids", multiple=True, help="The take holding this chunk (manifest chunks[].id).")
@click.option("--chapter", "chapters", type=int, multiple=True, help="Every take of this chapter (from 1).")
@exits.handles_errors
def redo(job_file: str, rejected: bool, chunk_ids: tuple[str, ...], chapters: tuple[int, ...]) -> None:
    """New takes for chosen takes; the old ones stay (the review file can pin one). Then `narrator run` builds
    with them, encoding again only what holds them."""
    from ..review.redo import redo as redo_takes
    from ..review.redo import select_takes

    job = exits.load(job_file)
    if not (rejected or chunk_ids or chapters):
        raise errors.JobError(["redo: say which takes: --rejected, --chunk ID or --chapter N"])
    result = redo_takes(
        job, lambda script: select_takes(script, rejected=rejected, chunks=chunk_ids, chapters=chapters)
    )
    failed = [r for r in result.outcome.results.values() if r.status != "synthesized"]
    click.echo(f"{len(result.takes)} take(s) asked for again, {len(result.takes) - len(failed)} made", err=True)
    if result.outcome.fatal is not None:
        raise result.outcome.fatal
    sys.exit(errors.EXIT_CHUNKS_FAILED if failed else errors.EXIT_OK)


@main.group()
def cache() -> None:
    """What the take cache holds; removing the takes no job uses."""


@cache.command()
@click.argument("job_files", nargs=-1, required=True, type=click.Path(dir_okay=False))
@exits.handles_errors
def stats(job_files: tuple[str, ...]) -> None:
    """Takes, bytes and voices in the caches of these jobs; which takes none of them uses."""
    _cache_survey(job_files, prune=False)


@cache.command()
@click.argument("job_files", nargs=-1, required=True, type=click.Path(dir_okay=False))
@click.option("--yes", is_flag=True, help="Remove them (without it: say what would be removed).")
@exits.handles_errors
def prune(job_files: tuple[str, ...], yes: bool) -> None:
    """Remove the takes that none of these jobs (nor their review files) uses. A dry run unless --yes."""
    _cache_survey(job_files, prune=yes)


def _cache_survey(job_files: tuple[str, ...], prune: bool) -> None:
    from ..run.cachetools import render, survey

    jobs = [exits.load(f) for f in job_files]
    roots = dict.fromkeys(job.cache.resolve() if isinstance(job.cache, Path) else job.cache for job in jobs)
    for root in roots:  # a take used by any listed job is kept, whichever cache the others name
        click.echo(plain(render(survey(root, jobs, prune=prune), pruned=prune)))


@main.command()
@click.argument("job_file", type=click.Path(dir_okay=False))
@exits.handles_errors
def cast(job_file: str) -> None:
    """Find the characters and who says each quotation, before anything is synthesized: writes JOB.cast.yaml
    beside the job (least sure first) for the editor to correct; corrections are kept by a new cast."""
    from ..job.cast import cast_path
    from ..run.casting import cast_job

    job = exits.load(job_file)
    if job.cast is None:
        raise errors.JobError([f"{job.path}: cast: the job has no cast: key (see the README's 'The cast')"])
    made = cast_job(job)
    cast, model = made.cast, made.model
    unsure = sum(1 for q in cast.quotations if q.confidence < 0.5)
    kept = f"; {made.kept} kept from the cast file" if made.kept else ""
    click.echo(f"{len(cast.quotations)} quotations, {len(cast.characters)} characters; {unsure} to check{kept}")
    if job.cast.attribution == "model":
        click.echo(f"model: {model.asked} chapters asked, {model.cached} from the cache, about ${model.cost_usd:.4f}")
    for note in model.notes:
        click.echo(f"warning: {note}", err=True)
    click.echo(f"cast: {cast_path(job.path)}")


@main.command()
@click.option("--provider", type=click.Choice(list(PROVIDERS)), default=None)
def voices(provider: str | None) -> None:
    """Providers and their voices."""
    for name in [provider] if provider else PROVIDERS:
        for heading, names in provider_kind(name).voices().items():
            click.echo(f"{heading}:")
            click.echo("  " + ", ".join(names))


if __name__ == "__main__":  # pragma: no cover
    main()
