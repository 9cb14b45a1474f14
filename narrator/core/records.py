"""What a run writes down, typed: the manifest, the report, the plan and QA rows. One schema version for all;
later versions only add keys. The previous manifest is read back by ``read_manifest`` alone, which takes every
earlier version and turns anything damaged into "no previous build", never a traceback.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from .audio import atomic_write

MANIFEST = "manifest.json"  # a build's record, in its output folder
REPORT = "report.json"  # a run's report, beside it


SCHEMA = 2  # 1: before records carried a schema number (same keys)

# The words the records use, typed (mypy checks every one written; the schemas list them)
ChunkState = Literal["cached", "synthesized", "failed", "pending"]  # a chunk in the manifest, after a run
TakeOutcome = Literal["synthesized", "failed", "skipped", "cached"]  # what one run did with one take
Stage = Literal["assembly", "mastering", "encoding", "book_encoding", "remux", "qa"]  # the build's stages
ExecutorKind = Literal["local", "ray"]
ProofVerdict = Literal["passed", "failed", "approved"]  # a take's proof-listening: approved takes are not heard


def _omitted() -> Any:
    """A key written only when it has a value (as the records always did)."""
    return Field(None, exclude_if=lambda value: value is None)


class Record(BaseModel):
    model_config = ConfigDict(populate_by_name=True, extra="ignore")

    def to_json(self) -> dict[str, Any]:
        return self.model_dump(mode="json", by_alias=True)

    def write(self, path: Path) -> None:
        atomic_write(path, (json.dumps(self.to_json(), indent=2, ensure_ascii=False) + "\n").encode("utf-8"))


class QaFile(Record):
    """One output file measured after encoding and judged against the mastering preset's rules."""

    file: str
    duration_seconds: float
    integrated_lufs: float | None = _omitted()
    true_peak_dbtp: float | None = _omitted()
    rms_db: float | None = _omitted()
    peak_dbfs: float | None = _omitted()
    noise_floor_db: float | None = _omitted()
    head_silence_seconds: float | None = _omitted()
    tail_silence_seconds: float | None = _omitted()
    sample_rate: int | None = _omitted()
    bitrate_kbps: int | None = _omitted()
    rules: dict[str, bool]
    passed: bool = Field(alias="pass")


class Placement(Record):
    """Where a chunk's take sits in its chapter file, and what a reviewer should listen for."""

    offset: float
    duration: float
    flags: list[str] = Field(default_factory=list)


class ManifestChunk(Record):
    id: str
    chapter: int  # from 1
    block: int
    piece: int
    kind: str
    text: str  # as spoken
    tokens: int
    characters: int
    cache_key: str  # what was asked: the provider's settings and the text
    audio: str  # the take's file, relative to the output folder
    audio_hash: str | None = _omitted()  # what came back: SHA-256 of the take's samples, once it exists
    status: ChunkState
    attempts: int = 0
    error: str | None = _omitted()
    offset: float | None = _omitted()
    duration: float | None = _omitted()
    flags: list[str] | None = _omitted()
    take: str | None = _omitted()  # the id of the take (request) it is read in
    speaker: str | None = _omitted()  # with a cast: the character who says it (as the cast file names it), or narrator


class TakeProof(Record):
    """What proof-listening heard of a take (synthesis/proofs.py): the verdict on the take in the book."""

    model: str
    verdict: ProofVerdict
    error_rate: float | None = _omitted()  # word errors / words sent, after normalising
    longest_run: int | None = _omitted()  # the longest run of consecutive divergent words
    retakes: int = 0  # takes made of it after the first
    transcript: str | None = _omitted()  # a failed take's, for the editor
    divergent: list[list[int]] | None = _omitted()  # a failed take's runs: [sent start, end, heard start, end] words


class ManifestTake(Record):
    """One request: consecutive chunks of a chapter, read together (takes.py)."""

    id: str
    chapter: int  # from 1
    chunks: list[str]
    text: str  # exactly what was sent
    cache_key: str
    audio_hash: str | None = _omitted()
    review: str | None = _omitted()  # approved | rejected | unheard | stale, when the review file speaks of it
    overridden: bool | None = _omitted()  # the text sent is an editor's, not the source's
    proof: TakeProof | None = _omitted()  # with proof: in the job


class PartRow(Record):
    name: str
    first_chunk: str
    start: float  # on the chapter's timeline
    end: float


class ChapterRow(Record):
    number: int  # from 1
    title: str
    start: float | None = _omitted()  # on the book's timeline, once built
    duration: float | None = _omitted()
    parts: list[PartRow] | None = _omitted()  # a chapter cut into several files


class Manifest(Record):
    """Deterministic (no timestamps): the same job and cache give the same manifest."""

    schema_version: int = Field(SCHEMA, alias="schema")
    title: str
    author: str | None = None
    provider: dict[str, Any]
    limits: dict[str, int]
    pauses: dict[str, float]
    chapters: list[ChapterRow]
    outputs: list[str] = Field(default_factory=list)
    fingerprints: dict[str, str] = Field(default_factory=dict)  # output path (relative) -> what shaped it
    qa: list[QaFile] = Field(default_factory=list)
    chunks: list[ManifestChunk]
    takes: list[ManifestTake] | None = _omitted()


def read_manifest(path: Path) -> Manifest | None:
    """The manifest a previous run left, or None: missing, unreadable, damaged or from a newer narrator."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        manifest = Manifest.model_validate(data)
    except (OSError, ValueError, ValidationError, RecursionError):
        return None
    return manifest if manifest.schema_version <= SCHEMA else None


class ChunkCounts(Record):
    total: int
    synthesized: int
    reused: int
    failed: int
    pending: int


class Costs(Record):
    this_run: float
    book: float


class QaSection(Record):
    preset: str
    passed: bool = Field(alias="pass")
    files: list[QaFile]


class ProofSection(Record):
    """Proof-listening in this run (with proof: in the job)."""

    model: str
    heard: int  # transcription requests made
    retakes: int  # new takes requested for takes that failed
    failed: list[str]  # takes still failing after their retakes (their ids), for the editor
    cost_usd: float  # the transcription requests' (the retakes' are in the run's cost)
    not_retaken: int = 0  # failing takes given no (further) retake: it would have taken the run over budget_usd


class Report(Record):
    """What a run did, for people and for CI. No key, no headers: nothing secret."""

    schema_version: int = Field(SCHEMA, alias="schema")
    exit_code: int
    message: str
    provider: dict[str, Any]
    chunks: ChunkCounts
    requests: int
    responses_by_status: dict[str, int]
    retries: dict[str, int]
    rate_limited: int
    failed_chunks: list[str]
    flagged_chunks: dict[str, list[str]]
    estimated_cost_usd: Costs
    timings_seconds: dict[str, float]
    # assembly, mastering and encoding overlap (timings_seconds.outputs is their wall time): the time each kept
    # a core busy, summed over threads
    stage_seconds: dict[Stage, float]
    stage_runs: dict[Stage, int] = {}  # how many times each stage ran: chapters assembled, files and segments encoded
    review: dict[str, int] = {}  # takes by the review file's word: approved, rejected, overridden, stale
    not_read: list[str] = []  # parts of the sources not read, and why (a title page's dedication, a contents page)
    outputs: list[str]  # the book's files on disk (after a failed run: the last build's)
    outputs_reused: bool
    qa: QaSection | None = _omitted()  # with a mastering preset
    outputs_current: bool = True  # do the files on disk hold this job as it stands? (false after any failure)
    # how many times the book's text was read and prepared for this run, over every process that worked on it
    # (1: on Ray too, the driver's preparation travels to the book's and the chapters' tasks)
    text_prepared: int = 1
    proof: ProofSection | None = _omitted()


class PlanRow(Record):
    """One chapter of a plan, or (with its extra keys) the total."""

    number: int | None = _omitted()
    title: str | None = _omitted()
    opening: str | None = _omitted()  # the first words spoken in the chapter
    chunks: int = 0
    takes: int | None = _omitted()  # requests: chunks grouped into takes (takes.py)
    characters: int = 0
    tokens: int = 0
    cached: int = 0
    audio_seconds: float = 0.0
    cost_usd: float = 0.0
    cost_to_finish_usd: float = 0.0
    requests_to_send: int | None = _omitted()
    time_seconds: float | None = _omitted()
    time_bound_by: str | None = _omitted()


class PlanProof(Record):
    """Proof-listening's share of a plan: the takes a run would hear (retakes, made only for takes that fail,
    are not foreseen), their audio and what hearing it costs (in the total's cost too)."""

    model: str
    takes_to_hear: int
    audio_minutes: float
    cost_usd: float


class PlanCast(Record):
    """The cast's share of a plan (attribution: model, no cast file yet): the chapters whose quotations a run would
    send to the model, and about what that costs (in the total's cost too)."""

    model: str
    chapters_to_ask: int
    quotations: int
    cost_usd: float


class Plan(Record):
    schema_version: int = Field(SCHEMA, alias="schema")
    job: str
    title: str
    provider: dict[str, Any]
    price: dict[str, float]
    limits: dict[str, int]
    concurrency: int
    requests_per_minute: float | None
    tokens_per_minute: float | None
    budget_usd: float | None
    chapters: list[PlanRow]
    total: PlanRow
    not_read: list[str] = Field(default_factory=list)  # parts of the sources that are no chapter, and why
    proof: PlanProof | None = _omitted()  # with proof: in the job
    cast: PlanCast | None = _omitted()  # with cast.attribution: model


class CatalogueBook(Record):
    """One book of a catalogue run: what it did, from its own report."""

    job: str  # the job file
    title: str
    output_dir: str
    report: str  # its report.json
    exit_code: int
    message: str
    requests: int = 0
    rate_limited: int = 0
    cost_usd: float = 0.0  # this run's
    changes: dict[str, int] = {}  # chunks added, changed and removed since its last build (narrator diff)
    takes_to_request: int = 0  # before the run
    files_encoded: int = 0  # chapter files and whole-book segments encoded; whole-book files joined
    outputs: list[str] = []


class CatalogueAccount(Record):
    """Books whose requests count against one account's limits, and the pace they shared."""

    account: str  # an endpoint and the name of its key's variable (never the key)
    books: int
    requests_per_minute: float | None
    tokens_per_minute: float | None


class Executor(Record):
    """Where a catalogue's work ran: here, or on a Ray cluster (its nodes, those used, the tasks run)."""

    kind: ExecutorKind
    nodes: int | None = _omitted()
    nodes_used: int | None = _omitted()
    tasks: int | None = _omitted()


class CatalogueReport(Record):
    """A catalogue run (``narrator run a.yaml b.yaml`` or ``narrator run catalogue.yaml``). Deterministic but for
    ``timings_seconds``; each book's own report.json has the rest."""

    schema_version: int = Field(SCHEMA, alias="schema")
    catalogue: str | None  # the catalogue file, or None for job files given one by one
    exit_code: int  # the worst book's
    message: str
    concurrency: int
    budget_usd: float | None
    accounts: list[CatalogueAccount]
    requests: int
    rate_limited: int
    cost_usd: float
    books: list[CatalogueBook]
    timings_seconds: dict[str, float]
    executor: Executor = Field(default_factory=lambda: Executor(kind="local"))  # where the work ran
