"""A book's work in a run, made explicit before anything is done, and what carrying it out gave back.

The plan (``plan_book``) lists the takes to request (each missing take once, in reading order), the chapters to
build, each with the takes it still waits for, and the book's join once every chapter is built (the files the
job's formats ask for, build/fileplan.py). An executor carries a plan out (local.py on this machine, rayrun.py on
a Ray cluster) and hands back the same record either way (Executed); bookrun.py writes the run's records from it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from ..build.stages import BuildResult, Unfinished
from ..core.records import MANIFEST, Manifest, read_manifest
from ..synthesis.proofs import ProofOutcome
from ..synthesis.scheduler import SynthesisOutcome, Work
from ..synthesis.script import Script


@dataclass(frozen=True)
class ChapterStep:
    """One chapter's build: it starts once the takes it waits for (cache keys) are stored."""

    index: int
    waits_for: frozenset[str]
    takes: frozenset[str]  # all its takes (with proof-listening, each must be heard too)


@dataclass(frozen=True)
class BookPlan:
    script: Script  # the book as prepared: chapters, chunks, takes, cache keys
    previous: Manifest | None  # the last run's record: the files on disk and their fingerprints
    cached: frozenset[str]  # takes stored when the plan was made
    reused: frozenset[str]  # chunk ids whose take was stored: not requested
    takes: tuple[Work, ...]  # to request
    chapters: tuple[ChapterStep, ...]  # to build, in reading order; then the book's join

    @property
    def before(self) -> dict[str, str]:
        """The files on disk as the last run recorded them: relative path -> fingerprint."""
        return self.previous.fingerprints if self.previous else {}


def plan_book(script: Script) -> BookPlan:
    """What is left to do for ``script``: reads the last run's manifest and the cache (a cache on object storage
    is fetched and checked first)."""
    script.cache.ready(script.keys.values())
    cached = frozenset(script.cached_keys())
    work: dict[str, Work] = {}
    for take in script.takes:
        key = script.key_of(take)
        if key not in cached and key not in work:
            work[key] = Work(key, script.text_of(take), take.tokens, script.provider_of(take))
    keys = [frozenset(script.key_of(t) for t in script.takes_by_chapter[i]) for i in range(len(script.chapters))]
    chapters = tuple(ChapterStep(index, takes - cached, takes) for index, takes in enumerate(keys))
    return BookPlan(
        script,
        read_manifest(script.job.output.dir / MANIFEST),
        cached,
        frozenset(c.id for c in script.chunks if script.keys[c.id] in cached),
        tuple(work.values()),
        chapters,
    )


@dataclass(frozen=True)
class Executed:
    """What an executor did with a book's plan: the takes' outcome, the build (or the chapter files it finished
    before takes it needed failed), and the preparations of the book's text its tasks read (one: the driver's)."""

    outcome: SynthesisOutcome
    built: BuildResult | Unfinished
    prepared: frozenset[str]
    proof: ProofOutcome | None = None  # with proof: in the job


class RunLog(Protocol):
    """What an executor tells the run while it works: its stages' wall times, and the takes' outcome as soon as
    synthesis ends (the manifest records it before the build goes on)."""

    timings: dict[str, float]

    def synthesized(self, outcome: SynthesisOutcome) -> None: ...


class BookExecutor(Protocol):
    async def execute(self, plan: BookPlan, log: RunLog) -> Executed: ...
