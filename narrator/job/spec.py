"""Load and validate a YAML job spec into frozen pydantic models: every default is written once, below.

Every problem is reported at once, one line each, as ``file:line: key.path: what is wrong``. Relative paths
resolve against the job file's folder. ``voice:`` is checked against the settings the named provider declares
(providers/), so a provider's own keys are known here without this module naming any provider.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated, Any

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationError, model_validator
from pydantic_core import PydanticCustomError

from ..core.errors import JobError
from ..core.fields import Choice, OneOf, Range, Text, kind_of
from ..core.outputkinds import OUTPUT_KINDS
from ..core.presets import ACX_MAX_FILE_MINUTES, PRESETS
from ..providers import PROVIDERS, provider_kind
from ..providers.base import Price, VoiceSpec
from ..providers.transcribe import MODELS as TRANSCRIBE_MODELS
from ..text.document import FrontMatter, ImageText, NotePlace, TableReading
from ..text.sources import EXTENSIONS, SOURCE_FORMATS
from . import yamlfile
from .checks import (
    ResolvedPath,
    as_bitrate,
    as_cache_location,
    as_chapter_choice,
    as_lexicon,
    as_list,
    as_price,
    as_sources,
    no_word,
)
from .specerrors import Problems


class _Spec(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class SourceSpec(_Spec):
    path: Annotated[Path, ResolvedPath(must_exist=True)]
    format: Annotated[Text, OneOf(SOURCE_FORMATS)]  # default: from the file's extension
    title: Text | None = None
    split_at: Annotated[int, Range(1, 6, integer=True)] | None = None  # Markdown and HTML: chapters at this level
    # which of its chapters to read: numbers from 1, ranges "3-5", titles; in reading order whatever the order here
    chapters: tuple[Annotated[int | str, BeforeValidator(as_chapter_choice)], ...] | None = None
    images: Annotated[ImageText, Choice(ImageText)] = "caption"  # what of a figure is read
    tables: Annotated[TableReading, Choice(TableReading)] = "rows"  # row by row with their headers, or announced
    notes: Annotated[NotePlace, Choice(NotePlace)] = "skip"  # footnote and endnote bodies
    front_matter: Annotated[FrontMatter, Choice(FrontMatter)] = "skip"  # a title page's dedication, epigraph
    # this source's own voice, instructions or speed, over the job's voice (see parse_job: _source_voice)
    voice: VoiceSpec | None = None

    @model_validator(mode="before")
    @classmethod
    def _shorthand(cls, value: Any) -> Any:
        """``- book.epub`` is short for ``- path: book.epub``; a missing format comes from the extension."""
        value = {"path": value} if isinstance(value, str) else value
        if isinstance(value, dict) and "format" not in value and isinstance(value.get("path"), (str, os.PathLike)):
            name = Path(value["path"]).name
            fmt = EXTENSIONS.get(Path(name).suffix.lower())
            if fmt is None:
                raise PydanticCustomError(
                    "format",
                    "cannot tell the format of {name}; name it with format: ({formats})",
                    {"name": name, "formats": ", ".join(SOURCE_FORMATS)},
                )
            value = {**value, "format": fmt}
        return value


class ChunkingSpec(_Spec):
    max_tokens: Annotated[int, Range(16, 100_000, integer=True)] = 2000  # o200k_base, instructions included
    max_chars: Annotated[int, Range(64, 1_000_000, integer=True)] = 4096  # the API reference's limit
    # a take groups paragraphs up to about this many characters (0: one paragraph per take); default: the
    # provider's (1800 for openai, 0 for the local voice)
    target_chars: Annotated[int, Range(0, 1_000_000, integer=True)] | None = None


Seconds = Annotated[float, Range(0, 30)]


class PauseSpec(_Spec):
    """Silence, in seconds, inserted by assembly from the document's structure."""

    chapter_start: Seconds = 0.5
    after_heading: Seconds = 1.0
    paragraph: Seconds = 0.6
    chunk: Seconds = 0.3  # between two chunks of one paragraph
    scene_break: Seconds = 1.5
    chapter_end: Seconds = 1.5


class RetrySpec(_Spec):
    attempts: Annotated[int, Range(1, 100, integer=True)] = 8
    max_seconds: Annotated[float, Range(1, 86_400)] = 900.0  # per chunk: attempts or time, whichever ends first


class ProofSpec(_Spec):
    """Proof-listening (synthesis/proofs.py): every take heard back through a transcription endpoint."""

    model: Annotated[Text, OneOf(TRANSCRIBE_MODELS)] = "gpt-4o-mini-transcribe"  # whisper-1 also gives word times
    base_url: Text | None = None  # default: the voice's endpoint (an OpenAI-compatible voice), else OpenAI's
    api_key_env: Text | None = None  # default: the voice's, else OPENAI_API_KEY
    retakes: Annotated[int, Range(0, 10, integer=True)] = 2  # new takes of a take that fails, before the editor
    concurrency: Annotated[int, Range(1, 64, integer=True)] = 4
    requests_per_minute: Annotated[float, Range(0.1, 1e7)] | None = None


class CastVoice(_Spec):
    """A voice of the cast: the provider's voice name (or the local voice's model) and its direction."""

    voice: Text | None = None  # default: one assigned by `narrator cast`
    instructions: Text | None = None


class CharacterSpec(CastVoice):
    aliases: tuple[Text, ...] = ()  # other names the text calls the character by ("Lizzy", "Miss Bennet")
    gender: Annotated[Text, OneOf(("female", "male"))] | None = None  # default: what the text says, if it does


class CastSpec(_Spec):
    """Dialogue in the characters' own voices (#26): ``narrator cast`` writes JOB.cast.yaml from it."""

    attribution: Annotated[Text, OneOf(("text", "model"))] = "text"  # from the text, offline; or asked of a model
    model: Text = "gpt-4o-mini"  # attribution: model: the relay's chat completions, structured output
    base_url: Text | None = None  # default: the voice's endpoint
    api_key_env: Text | None = None  # default: the voice's key variable
    narrator: CastVoice = CastVoice()  # default: the job's voice
    characters: dict[Text, CharacterSpec] = Field(default_factory=dict)  # the ones you care about; others found


OutputFormat = Annotated[Text, OneOf(tuple(OUTPUT_KINDS))]


class OutputSpec(_Spec):
    # default (parse_job): out/<job file's name> beside the job
    dir: Annotated[Path, ResolvedPath(must_exist=False)] = Field(description="the folder for the audiobook")
    formats: Annotated[tuple[OutputFormat, ...], BeforeValidator(as_list)] = ("m4b", "mp3")
    bitrate: Annotated[str, BeforeValidator(as_bitrate)] = "64k"
    mastering: Annotated[Text, OneOf(tuple(PRESETS))] = "none"
    max_file_minutes: Annotated[float, Range(0.05, 1e6)] | None = None  # acx: 120, and no more

    @model_validator(mode="after")
    def _settle(self) -> OutputSpec:
        if not self.formats:
            raise PydanticCustomError(
                "formats", "formats: must name at least one of: {kinds}", {"kinds": ", ".join(OUTPUT_KINDS)}
            )
        object.__setattr__(self, "formats", tuple(dict.fromkeys(self.formats)))
        if self.mastering == "acx" and self.max_file_minutes is None:
            object.__setattr__(self, "max_file_minutes", ACX_MAX_FILE_MINUTES)
        return self


Word = Annotated[str, BeforeValidator(lambda w: w if isinstance(w, str) and w.strip() else no_word())]


class Job(_Spec):
    path: Path = Field(exclude=True)  # the job file itself: set by load_job, not a key of it
    sources: Annotated[tuple[SourceSpec, ...], BeforeValidator(as_sources)] = Field(
        description="a list of source documents"
    )
    output: OutputSpec = Field(description="the output folder and formats (default: out/<job name>, m4b and mp3)")
    # a folder, or a URL of object storage (s3://bucket/prefix, gs://, az://, file://: remote.py)
    cache: Annotated[Path | str, BeforeValidator(as_cache_location)] = Field(".narrator-cache", validate_default=True)
    title: Text | None = None  # default: the first source's metadata
    author: Text | None = None
    narrator: Text | None = None  # the M4B's composer tag
    year: Text | None = None
    description: Text | None = None
    cover: Annotated[Path, ResolvedPath(must_exist=True)] | None = None  # default: the EPUB's cover
    voice: VoiceSpec = VoiceSpec()  # the named provider's own Settings (see load_job)
    # how a bare numeral chapter title is spoken: "I" as "Chapter One" (numbered), or as printed
    chapter_titles: Annotated[Text, OneOf(("numbered", "as_written"))] = "numbered"
    chunking: ChunkingSpec = ChunkingSpec()
    pauses: PauseSpec = PauseSpec()
    retry: RetrySpec = RetrySpec()
    proof: ProofSpec | None = None  # no proof-listening unless asked for
    cast: CastSpec | None = None  # no cast unless asked for: the job's voice reads everything
    lexicon: Annotated[dict[Word, Text], BeforeValidator(as_lexicon)] = Field(default_factory=dict)
    concurrency: Annotated[int, Range(1, 256, integer=True)] = 4
    requests_per_minute: Annotated[float, Range(0.1, 1e7)] | None = None
    tokens_per_minute: Annotated[float, Range(1, 1e10)] | None = None
    budget_usd: Annotated[float, Range(0, 1e9)] | None = None  # refuse a run that would cost more
    prices: dict[Text, Annotated[Price, BeforeValidator(as_price)]] = Field(default_factory=dict)  # per model

    def voice_for(self, source: int) -> VoiceSpec:
        """The voice a source is read with: its own, else the job's."""
        return self.sources[source].voice or self.voice


def load_job(path: str | os.PathLike[str]) -> Job:
    """Read, parse and validate a job file. Raises JobError with every problem found."""
    job_path = Path(path)
    try:
        text = job_path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise JobError([f"{job_path}: job file not found"]) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise JobError([f"{job_path}: cannot read job file: {exc}"]) from None
    return parse_job(text, job_path)


def parse_job(text: str, job_path: Path) -> Job:
    raw, lines = yamlfile.load(text, job_path)
    report = Problems(job_path, lines)
    if not isinstance(raw, dict):
        raise JobError([f"{job_path}:1: a job must be a YAML mapping, got {kind_of(raw)}"])
    context = {"base": job_path.resolve().parent}
    if "path" in raw:  # the job's own path is not a key a user sets
        keys = ", ".join(k for k, f in Job.model_fields.items() if not f.exclude)
        report.add("path", f"unknown key; allowed: {keys}")
    data = {k: v for k, v in raw.items() if k not in ("voice", "path")}
    voice = _voice(raw.get("voice"), context, report)
    if voice is not None:
        data["voice"] = voice
    if isinstance(raw.get("sources"), list):  # a source's voice is checked once the job's is known to be good
        usable = voice is not None or "voice" not in raw
        job_voice = raw.get("voice") or {}
        data["sources"] = [
            _source_voice(s, i, job_voice, context, report, usable) for i, s in enumerate(raw["sources"])
        ]
    output = raw.get("output", {})
    if isinstance(output, dict) and "dir" not in output:  # default: out/<job name> beside the job
        data["output"] = {**output, "dir": f"out/{job_path.stem}"}
    try:
        job = Job.model_validate({**data, "path": job_path}, context=context)
    except ValidationError as exc:
        report.add_all(exc, data, Job)
        raise JobError(report.problems) from None
    report.extend(_cross_checks(job))
    if report.problems:
        raise JobError(report.problems)
    return job


def _voice(raw: Any, context: dict[str, Any], report: Problems, prefix: tuple[Any, ...] = ()) -> VoiceSpec | None:
    """``voice:`` against the named provider's settings; None where it cannot be checked (already reported)."""
    if raw is None:
        return None
    if not isinstance(raw, dict):
        report.add("voice", f"must be a mapping, got {kind_of(raw)}")
        return None
    name = raw.get("provider", VoiceSpec.model_fields["provider"].default)
    settings: type[VoiceSpec] = VoiceSpec
    if name in PROVIDERS:
        settings = provider_kind(name).settings
    else:  # still check the keys every provider reads
        report.add("voice.provider", f"{name!r} is not one of: {', '.join(PROVIDERS)}")
        raw = {k: v for k, v in raw.items() if k in VoiceSpec.model_fields and k != "provider"}
    try:
        voice = settings.model_validate(raw, context=context)
    except ValidationError as exc:
        report.add_all(exc, {"voice": raw}, settings, prefix=(*prefix, "voice"))
        return None
    return voice if name in PROVIDERS else None


SOURCE_VOICE_KEYS = ("voice", "instructions", "speed")


def _source_voice(
    source: Any, i: int, job_voice: dict[str, Any], context: dict[str, Any], report: Problems, usable: bool
) -> Any:
    """A source's ``voice:`` (voice, instructions, speed) over the job's: the whole voice it reads with, checked
    as the job's is. The provider and its other keys (model, key, endpoint) are the job's: one account."""
    if not isinstance(source, dict) or "voice" not in source:
        return source
    override = source["voice"]
    where = f"sources[{i}].voice"
    if not usable:
        return {k: v for k, v in source.items() if k != "voice"}
    if not isinstance(override, dict):
        report.add(where, f"must be a mapping, got {kind_of(override)}")
        return {k: v for k, v in source.items() if k != "voice"}
    for key in override.keys() - set(SOURCE_VOICE_KEYS):
        report.add(
            f"{where}.{key}", f"a source may set only {', '.join(SOURCE_VOICE_KEYS)}; the rest is the job's voice"
        )
    merged = {**job_voice, **{k: v for k, v in override.items() if k in SOURCE_VOICE_KEYS}}
    voice = _voice(merged, context, report, prefix=("sources", i))
    return {**source, "voice": voice} if voice is not None else {k: v for k, v in source.items() if k != "voice"}


def _folder_problem(path: Path) -> str | None:
    """Why ``path`` cannot be (or become) a folder of ours: it is a file, or one of its parents is."""
    for folder in (path, *path.parents):
        if folder.exists():
            return None if folder.is_dir() else f"not a folder: {folder}" + ("" if folder == path else f" (in {path})")
    return None


def _output_problem(job: Job) -> str | None:
    """An output folder narrator would make a mess of, or whose files it might take for its own."""
    out = job.output.dir
    home = Path.home().resolve()
    own = "give the book a folder of its own"
    if out == Path(out.anchor) or out == home:
        return f"{out} is {'the root' if out == Path(out.anchor) else 'your home'} folder; {own}"
    if out == job.path.resolve().parent:
        return f"{out} is the job's own folder; {own} (e.g. out/)"
    for source in job.sources:
        if out == source.path.parent:
            return f"{out} is the folder of source {source.path.name}; {own}"
    return _folder_problem(out)


def _cross_checks(job: Job) -> list[tuple[str, str]]:
    problems = []
    if isinstance(job.cache, Path) and (problem := _folder_problem(job.cache)) is not None:
        problems.append(("cache", problem))
    if (problem := _output_problem(job)) is not None:
        problems.append(("output.dir", problem))
    for i, source in enumerate(job.sources):
        if source.split_at is not None and source.format not in ("markdown", "html"):
            problems.append(
                (f"sources[{i}].split_at", f"only Markdown and HTML split at headings, not {source.format}")
            )
    if job.proof is not None and job.proof.retakes and not isinstance(job.cache, Path):
        # a retake chosen by proof goes under its take's key: a remote store names its objects by their audio
        problems.append(("proof.retakes", "retakes need a cache folder on this machine; set retakes: 0 or cache:"))
    if job.output.mastering == "acx":
        # ACX wants 0.5-1 s of room tone at the head of each file and 1-5 s at the tail
        if not 0.45 <= job.pauses.chapter_start <= 0.95:
            problems.append(("pauses.chapter_start", "the acx preset needs 0.45-0.95 s (ACX: 0.5-1 s of room tone)"))
        if not 1.0 <= job.pauses.chapter_end <= 4.9:
            problems.append(("pauses.chapter_end", "the acx preset needs 1-4.9 s (ACX: 1-5 s of room tone)"))
        minutes = job.output.max_file_minutes
        if minutes is not None and minutes > ACX_MAX_FILE_MINUTES:
            problems.append(
                ("output.max_file_minutes", f"the acx preset allows at most 120 minutes a file, got {minutes:g}")
            )
    return problems


__all__ = [
    "ChunkingSpec",
    "Job",
    "OutputSpec",
    "PauseSpec",
    "Price",
    "RetrySpec",
    "SourceSpec",
    "VoiceSpec",
    "load_job",
]
