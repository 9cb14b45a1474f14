"""How the command line ends: a user's mistake, or the environment's, is one line and an exit code (never a
traceback); a signal stops the run's ffmpeg processes too, and finished work stays."""

from __future__ import annotations

import errno
import functools
import os
import signal
import sys
from collections.abc import Callable
from typing import Any

import click

from ..core import errors
from ..job.spec import Job, load_job
from ..text.normalise import plain


def fail(exc: errors.NarratorError) -> None:
    for line in str(exc).splitlines() or [type(exc).__name__]:
        click.echo(f"error: {plain(line)}", err=True)
    sys.exit(exc.exit_code)


_ADVICE = {  # what to do about the environment's errors
    errno.ENOSPC: " (in the output folder or the cache): free some space and rerun; finished takes are kept",
    errno.EACCES: ": narrator may not write there; give the output folder or cache a place it may",
    errno.EROFS: ": a read-only file system; give the output folder or cache a place narrator may write",
}


def handles_errors(fn: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except errors.NarratorError as exc:
            fail(exc)
        except OSError as exc:  # the environment: a full disk, a folder that vanished or may not be written
            where = f"{exc.filename}: " if exc.filename else ""
            advice = _ADVICE.get(exc.errno or 0, "")
            click.echo(f"error: {plain(where)}{exc.strerror or exc}{advice}", err=True)
            sys.exit(errors.EXIT_INVALID)
        except KeyboardInterrupt as exc:
            signum = exc.signum if isinstance(exc, Stopped) else signal.SIGINT
            click.echo(f"{signal.strsignal(signum)}: finished chunks are kept; rerun to resume", err=True)
            sys.exit(128 + signum)

    return wrapper


class Stopped(KeyboardInterrupt):
    """narrator was told to stop by a signal."""

    def __init__(self, signum: int):
        super().__init__(signum)
        self.signum = signum


def stop_on_signals() -> None:
    """SIGINT or SIGTERM, from a terminal or a CI job's timeout: kill the ffmpeg processes too (a signal sent to
    narrator alone does not reach them), then unwind as for Ctrl-C. Finished chunks and files stay; every file
    being written is a temporary one."""

    stopping = False

    def stop(signum: int, frame: object) -> None:
        nonlocal stopping
        if stopping:  # a second Ctrl-C: the user means it, and the first is already unwinding
            os._exit(128 + signum)
        stopping = True
        click.echo("stopping... (finished chunks are kept)", err=True)
        from ..core import ffmpeg

        ffmpeg.stop_all()
        raise Stopped(signum)

    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, stop)


def load(job_file: str) -> Job:
    job = load_job(job_file)
    from ..synthesis.script import provider_for

    try:
        provider_for(job)  # voice, model and key problems surface here, before any work
    except errors.JobError as exc:
        raise errors.JobError([f"{job.path}: {problem}" for problem in exc.problems]) from None
    return job
