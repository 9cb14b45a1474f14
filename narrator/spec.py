"""Load and validate a YAML job spec into frozen dataclasses.

Every problem is reported at once, one line each, as ``file:line: key.path: what is wrong``.
Relative paths resolve against the job file's folder.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from .errors import JobError

SOURCE_FORMATS = ("epub", "markdown", "html", "text")
OUTPUT_FORMATS = ("m4b", "mp3", "opus", "mp3-book", "srt", "vtt")
PROVIDERS = ("local", "openai")
MASTERING_PRESETS = ("none", "acx", "podcast", "ebu")
RESPONSE_FORMATS = ("pcm", "wav", "mp3")
ACX_MAX_FILE_MINUTES = 120.0  # ACX: at most 120 minutes per file
TOP_LEVEL_KEYS = (
    "title", "author", "narrator", "year", "description", "cover", "sources", "voice", "chunking", "pauses",
    "retry", "lexicon", "concurrency", "requests_per_minute", "tokens_per_minute", "budget_usd", "prices",
    "output", "cache",
)  # fmt: skip
_EXTENSIONS = {
    ".epub": "epub",
    ".md": "markdown",
    ".markdown": "markdown",
    ".html": "html",
    ".htm": "html",
    ".xhtml": "html",
    ".txt": "text",
    ".text": "text",
}


@dataclass(frozen=True)
class SourceSpec:
    path: Path
    format: str
    title: str | None = None


@dataclass(frozen=True)
class VoiceSpec:
    provider: str = "local"
    voice: str | None = None  # None: the provider's default
    model: str | None = None
    instructions: str | None = None
    speed: float = 1.0
    base_url: str | None = None
    api_key_env: str = "OPENAI_API_KEY"
    response_format: str = "pcm"
    timeout: float = 180.0  # seconds per request; a full 4096-character chunk takes up to a minute


@dataclass(frozen=True)
class ChunkingSpec:
    max_tokens: int = 2000
    max_chars: int = 4096


@dataclass(frozen=True)
class PauseSpec:
    """Silence, in seconds, inserted by assembly from the document's structure."""

    chapter_start: float = 0.5
    after_heading: float = 1.0
    paragraph: float = 0.6
    chunk: float = 0.3  # between two chunks of one paragraph
    scene_break: float = 1.5
    chapter_end: float = 1.5


@dataclass(frozen=True)
class RetrySpec:
    attempts: int = 8
    max_seconds: float = 900.0  # the per-chunk budget: attempts and total time, whichever ends first


@dataclass(frozen=True)
class OutputSpec:
    dir: Path
    formats: tuple[str, ...] = ("m4b", "mp3")
    bitrate: str = "64k"
    mastering: str = "none"  # none | acx | podcast | ebu
    max_file_minutes: float | None = None  # chapter files longer than this are split into parts (acx: 120)


@dataclass(frozen=True)
class Price:
    """Dollars. A provider may charge by input tokens, by characters, by audio length, or a mix."""

    per_million_input_tokens: float = 0.0
    per_million_chars: float = 0.0
    per_audio_hour: float = 0.0


@dataclass(frozen=True)
class Job:
    path: Path
    sources: tuple[SourceSpec, ...]
    output: OutputSpec
    cache: Path
    title: str | None = None
    author: str | None = None
    narrator: str | None = None
    year: str | None = None
    description: str | None = None
    cover: Path | None = None
    voice: VoiceSpec = field(default_factory=VoiceSpec)
    chunking: ChunkingSpec = field(default_factory=ChunkingSpec)
    pauses: PauseSpec = field(default_factory=PauseSpec)
    retry: RetrySpec = field(default_factory=RetrySpec)
    lexicon: tuple[tuple[str, str], ...] = ()
    concurrency: int = 4
    requests_per_minute: float | None = None
    tokens_per_minute: float | None = None
    prices: tuple[tuple[str, Price], ...] = ()  # per-model overrides of the built-in price table
    budget_usd: float | None = None  # refuse to start a run whose estimated cost to finish is higher


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
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
        raw = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"{job_path}:{mark.line + 1}" if mark else str(job_path)
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise JobError([f"{where}: invalid YAML: {problem}"]) from None
    checker = _Checker(job_path, _key_lines(node))
    job = checker.job(raw)
    if checker.problems:
        raise JobError(checker.problems)
    assert job is not None
    return job


def _key_lines(node: yaml.Node | None, path: str = "", lines: dict[str, int] | None = None) -> dict[str, int]:
    """Map every key path (``sources[1].path``) to its 1-based line in the YAML text."""
    lines = {} if lines is None else lines
    if node is None:
        return lines
    lines.setdefault(path, node.start_mark.line + 1)
    if isinstance(node, yaml.MappingNode):
        for key_node, value_node in node.value:
            sub = f"{path}.{key_node.value}" if path else str(key_node.value)
            lines[sub] = key_node.start_mark.line + 1
            _key_lines(value_node, sub, lines)
    elif isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            _key_lines(item, f"{path}[{i}]", lines)
    return lines


_MISSING = object()


class _Checker:
    """Walks the parsed YAML, collecting one problem line per mistake."""

    def __init__(self, job_path: Path, lines: dict[str, int]):
        self.job_path = job_path
        self.base = job_path.resolve().parent
        self.lines = lines
        self.problems: list[str] = []

    def fail(self, key: str, message: str) -> None:
        line = self.lines.get(key)
        where = f"{self.job_path}:{line}" if line else str(self.job_path)
        self.problems.append(f"{where}: {key or '(top level)'}: {message}" if key else f"{where}: {message}")

    # -- primitive checks ---------------------------------------------------------------------
    def mapping(self, value: Any, key: str, allowed: tuple[str, ...]) -> dict[str, Any]:
        if value is None:
            return {}
        if not isinstance(value, dict):
            self.fail(key, f"must be a mapping, got {_kind(value)}")
            return {}
        for name in value:
            if name not in allowed:
                sub = f"{key}.{name}" if key else str(name)
                self.fail(sub, f"unknown key; allowed: {', '.join(allowed)}")
        return value

    def string(self, value: Any, key: str, default: Any = None, choices: tuple[str, ...] = ()) -> Any:
        if value is _MISSING or value is None:
            return default
        if isinstance(value, bool) or not isinstance(value, (str, int, float)):
            self.fail(key, f"must be a string, got {_kind(value)}")
            return default
        value = str(value)
        if choices and value not in choices:
            self.fail(key, f"{value!r} is not one of: {', '.join(choices)}")
            return default
        return value

    def number(self, value: Any, key: str, default: Any, lo: float, hi: float, integer: bool = False) -> Any:
        if value is _MISSING or value is None:
            return default
        ok_type = (int,) if integer else (int, float)
        if isinstance(value, bool) or not isinstance(value, ok_type):
            self.fail(key, f"must be {'an integer' if integer else 'a number'}, got {_kind(value)}")
            return default
        if not lo <= value <= hi:
            self.fail(key, f"must be between {lo:g} and {hi:g}, got {value}")
            return default
        return value

    def path(self, value: Any, key: str, must_exist: bool) -> Path | None:
        text = self.string(value, key)
        if text is None:
            return None
        resolved = (self.base / os.path.expanduser(text)).resolve()
        if must_exist:
            if not resolved.exists():
                self.fail(key, f"file not found: {resolved}")
                return None
            if not resolved.is_file() or not os.access(resolved, os.R_OK):
                self.fail(key, f"not a readable file: {resolved}")
                return None
        return resolved

    # -- sections -----------------------------------------------------------------------------
    def job(self, raw: Any) -> Job | None:
        if not isinstance(raw, dict):
            self.fail("", f"a job must be a YAML mapping, got {_kind(raw)}")
            return None
        top = self.mapping(raw, "", TOP_LEVEL_KEYS)
        sources = self.sources(top.get("sources", _MISSING))
        output = self.output(top.get("output"))
        cache = self.path(top.get("cache", ".narrator-cache"), "cache", must_exist=False)
        if cache is not None and cache.exists() and not cache.is_dir():
            self.fail("cache", f"not a folder: {cache}")
        job = Job(
            path=self.job_path,
            title=self.string(top.get("title"), "title"),
            author=self.string(top.get("author"), "author"),
            narrator=self.string(top.get("narrator"), "narrator"),
            year=self.string(top.get("year"), "year"),
            description=self.string(top.get("description"), "description"),
            cover=self.path(top.get("cover"), "cover", must_exist=True),
            sources=sources,
            voice=self.voice(top.get("voice")),
            chunking=self.chunking(top.get("chunking")),
            pauses=self.pauses(top.get("pauses")),
            retry=self.retry(top.get("retry")),
            lexicon=self.lexicon(top.get("lexicon")),
            concurrency=self.number(top.get("concurrency"), "concurrency", 4, 1, 256, integer=True),
            requests_per_minute=self.number(top.get("requests_per_minute"), "requests_per_minute", None, 0.1, 1e7),
            tokens_per_minute=self.number(top.get("tokens_per_minute"), "tokens_per_minute", None, 1, 1e10),
            output=output,
            cache=cache or self.base / ".narrator-cache",
            prices=self.prices(top.get("prices")),
            budget_usd=self.number(top.get("budget_usd"), "budget_usd", None, 0, 1e9),
        )
        if job.output.mastering == "acx":
            # ACX wants 0.5-1 s of room tone at the head of each file and 1-5 s at the tail
            if not 0.45 <= job.pauses.chapter_start <= 0.95:
                self.fail("pauses.chapter_start", "the acx preset needs 0.45-0.95 s (ACX: 0.5-1 s of room tone)")
            if not 1.0 <= job.pauses.chapter_end <= 4.9:
                self.fail("pauses.chapter_end", "the acx preset needs 1-4.9 s (ACX: 1-5 s of room tone)")
        return job

    def sources(self, value: Any) -> tuple[SourceSpec, ...]:
        if value is _MISSING:
            self.fail("sources", "required: a list of source documents")
            return ()
        if not isinstance(value, list) or not value:
            self.fail("sources", "must be a non-empty list of paths or {path, title, format} mappings")
            return ()
        specs = []
        for i, item in enumerate(value):
            key = f"sources[{i}]"
            if isinstance(item, dict):
                entry = self.mapping(item, key, ("path", "title", "format"))
                if "path" not in entry:
                    self.fail(f"{key}.path", "required")
                    continue
                path = self.path(entry["path"], f"{key}.path", must_exist=True)
                title = self.string(entry.get("title"), f"{key}.title")
                fmt = self.string(entry.get("format"), f"{key}.format", choices=SOURCE_FORMATS)
                path_key = f"{key}.path"
            else:
                path = self.path(item, key, must_exist=True)
                title, fmt, path_key = None, None, key
            if path is None:
                continue
            fmt = fmt or _EXTENSIONS.get(path.suffix.lower())
            if fmt is None:
                self.fail(
                    path_key,
                    f"cannot tell the format of {path.name}; name it with format: ({', '.join(SOURCE_FORMATS)})",
                )
                continue
            specs.append(SourceSpec(path=path, format=fmt, title=title))
        return tuple(specs)

    def voice(self, value: Any) -> VoiceSpec:
        v = self.mapping(
            value,
            "voice",
            ("provider", "voice", "model", "instructions", "speed", "base_url", "api_key_env",
             "response_format", "timeout"),
        )  # fmt: skip
        provider = self.string(v.get("provider"), "voice.provider", "local", PROVIDERS)
        return VoiceSpec(
            provider=provider,
            voice=self.string(v.get("voice"), "voice.voice"),
            model=self.string(v.get("model"), "voice.model"),
            instructions=self.string(v.get("instructions"), "voice.instructions"),
            speed=self.number(v.get("speed"), "voice.speed", 1.0, 0.25, 4.0),
            base_url=self.string(v.get("base_url"), "voice.base_url"),
            api_key_env=self.string(v.get("api_key_env"), "voice.api_key_env", "OPENAI_API_KEY"),
            response_format=self.string(v.get("response_format"), "voice.response_format", "pcm", RESPONSE_FORMATS),
            timeout=self.number(v.get("timeout"), "voice.timeout", 180.0, 1, 3600),
        )

    def chunking(self, value: Any) -> ChunkingSpec:
        c = self.mapping(value, "chunking", ("max_tokens", "max_chars"))
        return ChunkingSpec(
            max_tokens=self.number(c.get("max_tokens"), "chunking.max_tokens", 2000, 16, 100_000, True),
            max_chars=self.number(c.get("max_chars"), "chunking.max_chars", 4096, 64, 1_000_000, True),
        )

    def pauses(self, value: Any) -> PauseSpec:
        names = tuple(PauseSpec.__dataclass_fields__)
        p = self.mapping(value, "pauses", names)
        defaults = PauseSpec()
        return PauseSpec(**{n: self.number(p.get(n), f"pauses.{n}", getattr(defaults, n), 0, 30) for n in names})

    def retry(self, value: Any) -> RetrySpec:
        r = self.mapping(value, "retry", ("attempts", "max_seconds"))
        return RetrySpec(
            attempts=self.number(r.get("attempts"), "retry.attempts", 8, 1, 100, integer=True),
            max_seconds=self.number(r.get("max_seconds"), "retry.max_seconds", 900.0, 1, 86_400),
        )

    def lexicon(self, value: Any) -> tuple[tuple[str, str], ...]:
        if value is None:
            return ()
        if not isinstance(value, dict):
            self.fail("lexicon", f"must be a mapping of word: replacement, got {_kind(value)}")
            return ()
        pairs = []
        for word, replacement in value.items():
            key = f"lexicon.{word}"
            if not isinstance(word, str) or not word.strip():
                self.fail(key, "a lexicon word must be non-empty text")
                continue
            text = self.string(replacement, key)
            if text is not None:
                pairs.append((word, text))
        return tuple(pairs)

    def output(self, value: Any) -> OutputSpec:
        if value is None:
            self.fail("output", "required: at least output.dir")
            return OutputSpec(dir=self.base / "out")
        o = self.mapping(value, "output", ("dir", "formats", "bitrate", "mastering", "max_file_minutes"))
        if "dir" not in o:
            self.fail("output.dir", "required: the folder for the audiobook")
        out_dir = self.path(o.get("dir"), "output.dir", must_exist=False) or self.base / "out"
        formats = o.get("formats", ["m4b", "mp3"])
        if isinstance(formats, str):
            formats = [formats]
        if not isinstance(formats, list) or not formats:
            self.fail("output.formats", f"must be a non-empty list of: {', '.join(OUTPUT_FORMATS)}")
            formats = ["m4b", "mp3"]
        checked = [self.string(f, f"output.formats[{i}]", choices=OUTPUT_FORMATS) for i, f in enumerate(formats)]
        bitrate = self.string(o.get("bitrate"), "output.bitrate", "64k")
        if not (bitrate[:-1].isdigit() and bitrate[-1] in "kK"):
            self.fail("output.bitrate", f"must look like 64k, got {bitrate!r}")
            bitrate = "64k"
        mastering = self.string(o.get("mastering"), "output.mastering", "none", MASTERING_PRESETS)
        default = ACX_MAX_FILE_MINUTES if mastering == "acx" else None
        max_minutes = self.number(o.get("max_file_minutes"), "output.max_file_minutes", default, 0.05, 1e6)
        if mastering == "acx" and max_minutes is not None and max_minutes > ACX_MAX_FILE_MINUTES:
            self.fail("output.max_file_minutes", f"the acx preset allows at most 120 minutes a file, got {max_minutes}")
            max_minutes = ACX_MAX_FILE_MINUTES
        return OutputSpec(
            dir=out_dir,
            formats=tuple(dict.fromkeys(f for f in checked if f)),
            bitrate=bitrate.lower(),
            mastering=mastering,
            max_file_minutes=max_minutes,
        )

    def prices(self, value: Any) -> tuple[tuple[str, Price], ...]:
        if value is None:
            return ()
        if not isinstance(value, dict):
            self.fail("prices", "must map a model name to dollars per audio hour, or to {per_audio_hour, "
                      "per_million_chars, per_million_input_tokens}")  # fmt: skip
            return ()
        fields = tuple(Price.__dataclass_fields__)
        table = []
        for model, price in value.items():
            key = f"prices.{model}"
            if isinstance(price, dict):
                entry = self.mapping(price, key, fields)
                table.append((str(model), Price(**{f: self.number(entry.get(f), f"{key}.{f}", 0.0, 0, 1e6)
                                                   for f in fields})))  # fmt: skip
            else:
                table.append((str(model), Price(per_audio_hour=self.number(price, key, 0.0, 0, 1e6))))
        return tuple(table)


def _kind(value: Any) -> str:
    return {dict: "a mapping", list: "a list", str: "text", bool: "true/false", type(None): "nothing"}.get(
        type(value), type(value).__name__
    )
