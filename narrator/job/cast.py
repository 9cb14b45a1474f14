"""The cast file, JOB.cast.yaml beside the job: who the characters are (name, aliases, lines, voice, direction,
gender) and who says each quotation (its id, an excerpt, the speaker, how sure). ``narrator cast`` writes it; the
editor corrects it by hand; a new ``narrator cast`` keeps every correction it can still place (a quotation by its
id, a character by its name)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import yaml

from ..core.audio import atomic_write
from ..core.errors import JobError

HEADER = """\
# The cast of {job}, made by `narrator cast` from the text. Correct it here: a quotation's speaker (a character's
# name, or narrator), a character's voice or instructions. Quotations are listed least sure first; their ids stay
# while their words do, so a new `narrator cast` keeps what you changed.
"""


@dataclass
class CastCharacter:
    name: str
    aliases: list[str] = field(default_factory=list)
    lines: int = 0
    gender: str | None = None
    voice: str | None = None
    instructions: str | None = None


@dataclass
class CastQuotation:
    id: str
    chapter: int  # from 1, as the plan numbers chapters
    excerpt: str
    speaker: str  # a character's name, or "narrator"
    confidence: float
    how: str  # what the attribution rests on: tag, pronoun, vocative, turn, last, none; or editor


@dataclass
class CastFile:
    narrator: dict[str, str | None]
    characters: list[CastCharacter]
    quotations: list[CastQuotation]


def cast_path(job_path: Path) -> Path:
    """``pride.yaml`` -> ``pride.cast.yaml``."""
    return job_path.with_name(job_path.stem + ".cast.yaml")


def write_cast(path: Path, cast: CastFile, job_name: str) -> None:
    body = {
        "narrator": cast.narrator,
        "characters": {c.name: {k: v for k, v in asdict(c).items() if k != "name" and v not in (None, [])}
                       for c in cast.characters},
        "quotations": [asdict(q) for q in cast.quotations],
    }  # fmt: skip
    text = HEADER.format(job=job_name) + yaml.safe_dump(body, sort_keys=False, allow_unicode=True, width=120)
    atomic_write(path, text.encode("utf-8"))


def read_cast(path: Path) -> CastFile | None:
    """The cast file as the editor left it; None when there is none. A file that is not a cast says so, naming
    itself (one line)."""
    if not path.is_file():
        return None
    try:
        data: Any = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        characters = [CastCharacter(name, **(fields or {})) for name, fields in (data.get("characters") or {}).items()]
        quotations = [CastQuotation(**q) for q in data.get("quotations") or []]
        return CastFile(dict(data.get("narrator") or {}), characters, quotations)
    except (yaml.YAMLError, TypeError, AttributeError) as exc:
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise JobError([f"{path}: not a cast file narrator can read ({first})"]) from None
