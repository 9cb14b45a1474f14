"""The cast file, JOB.cast.yaml beside the job: who the characters are (name, aliases, lines, voice, direction,
gender) and who says each quotation (its id, an excerpt, the speaker, how sure). ``narrator cast`` (or the first
run) writes it; the editor corrects it by hand; a new cast keeps every correction it can still place (a quotation
by its id, a character by its name).

Voices: the narrator keeps the job's voice (or the cast's ``narrator``); each character the cast names keeps its
own; the others, most lines first, get a voice of their gender the narrator and the characters before them do not
use, while the provider has one to spare; after that, minor characters share the voices of their gender in turn.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import yaml

from ..core.audio import atomic_write
from ..core.errors import JobError
from ..providers.openai import MODEL_VOICES
from ..text.dialogue.attribution import Cast, Character, attribute, gender_of
from ..text.dialogue.quotes import excerpt, find_quotations
from ..text.document import Chapter
from .castmodel import ModelLedger, ModelRequest, chapter_request, model_speakers
from .spec import Job

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
        cast = CastFile(dict(data.get("narrator") or {}), characters, quotations)
    except (yaml.YAMLError, TypeError, AttributeError) as exc:
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise JobError([f"{path}: not a cast file narrator can read ({first})"]) from None
    speakers = ["narrator", *(c.name for c in characters)]
    strays = [
        f"{path}: quotation {q.id}: speaker {q.speaker!r} is not in the cast ({', '.join(speakers)})"
        for q in quotations
        if q.speaker not in speakers
    ]
    if strays:  # a typo would put the line in the narrator's voice, unnoticed
        raise JobError(strays)
    return cast


# How the speech API's voices sound (OpenAI's own descriptions and our listening): for giving a character a voice
# of its gender. A voice not listed is given to anyone.
VOICE_GENDERS = {
    "female": ("coral", "nova", "sage", "shimmer", "marin"),
    "male": ("ash", "ballad", "echo", "onyx", "verse", "cedar"),
}


@dataclass(frozen=True)
class CastMade:
    cast: CastFile
    kept: int  # quotations whose speaker the cast file already gave (the editor's corrections among them)
    model: ModelLedger  # what asking the model cost and said (attribution: model)


def cast_of(job: Job, chapters: Sequence[Chapter], before: CastFile | None, ask_model: bool = False) -> CastMade:
    """The cast of the job's prepared book. A quotation the cast file ``before`` already has keeps its speaker
    there (the editor's word, or an earlier attribution); the others are attributed from the text, and with
    ``attribution: model`` and ``ask_model``, by the model where it answers."""
    spec = job.cast
    assert spec is not None
    known = [Character(name, list(c.aliases), c.gender or gender_of(name)) for name, c in spec.characters.items()]
    cast = Cast(known)
    cast.read(block.text for chapter in chapters for block in chapter.blocks)
    ledger = ModelLedger()
    quotations: list[CastQuotation] = []
    for index, chapter in enumerate(chapters):
        found = find_quotations(index, chapter.blocks)
        answers = attribute(chapter.blocks, found, cast)
        asking = ask_model and bool(found) and spec.attribution == "model"
        asked = model_speakers(job, index, chapter.blocks, found, cast, ledger) if asking else {}
        for q, answer in zip(found, answers, strict=True):
            shown = excerpt(chapter.blocks, q)
            if q.id in asked:
                quotations.append(CastQuotation(q.id, index + 1, shown, asked[q.id], 0.8, "model"))
            else:
                speaker = answer.speaker or "narrator"
                quotations.append(CastQuotation(q.id, index + 1, shown, speaker, answer.confidence, answer.how))
    kept = 0
    if before is not None:  # the file's word wins where it can still be placed
        quotations, kept = _file_word_kept(quotations, before.quotations)
    lines: dict[str, int] = {}
    for line in quotations:
        lines[line.speaker] = lines.get(line.speaker, 0) + 1
    characters = _characters(job, cast, lines, before)
    narrator = {
        "voice": spec.narrator.voice or job.voice.voice,
        "instructions": spec.narrator.instructions or job.voice.instructions,
    }
    quotations.sort(key=lambda q: q.confidence)  # least sure first (a stable sort: reading order otherwise)
    return CastMade(CastFile(narrator, characters, quotations), kept, ledger)


def _file_word_kept(found: list[CastQuotation], before: Sequence[CastQuotation]) -> tuple[list[CastQuotation], int]:
    """The cast file's speaker where it differs from the text's or is the editor's, by quotation id; an editor's
    correction whose id is gone (narrator now reads that quotation in other parts: a paragraph split into turns, a
    rule changed) goes to the first quotation of its chapter, unclaimed, that begins as it began."""
    said = {q.id: q for q in before}
    ids = {q.id for q in found}
    orphans = [q for q in before if q.how == "editor" and q.id not in ids]
    out: list[CastQuotation] = []
    kept = 0
    for line in found:
        old = said.get(line.id) or _orphan_for(line, orphans)
        if old is not None and (old.speaker != line.speaker or old.how == "editor"):
            line = CastQuotation(line.id, line.chapter, line.excerpt, old.speaker, 1.0, "editor")
            kept += 1
        out.append(line)
    return out, kept


def _orphan_for(line: CastQuotation, orphans: list[CastQuotation]) -> CastQuotation | None:
    opening = line.excerpt.split(" … ")[0].rstrip("…")
    for k, old in enumerate(orphans):
        was = old.excerpt.split(" … ")[0].rstrip("…")
        if old.chapter == line.chapter and opening and was and (was.startswith(opening) or opening.startswith(was)):
            return orphans.pop(k)
    return None


def _characters(job: Job, cast: Cast, lines: dict[str, int], before: CastFile | None) -> list[CastCharacter]:
    """Every character who speaks (and every one the job names), most lines first, each with a voice."""
    spec = job.cast
    assert spec is not None
    edited = {c.name: c for c in before.characters} if before is not None else {}
    people = [c for c in cast.characters if lines.get(c.name) or c.name in spec.characters]
    people.sort(key=lambda c: -lines.get(c.name, 0))
    available = MODEL_VOICES.get(getattr(job.voice, "model", "") or "gpt-4o-mini-tts", ())
    narrator_voice = spec.narrator.voice or job.voice.voice
    taken = {narrator_voice}
    out: list[CastCharacter] = []
    shared: dict[str | None, int] = {}
    for person in people:
        wanted = spec.characters.get(person.name)
        old = edited.get(person.name)
        voice = (wanted.voice if wanted else None) or (old.voice if old else None)
        if voice is None and job.voice.provider == "openai":
            voice = _free_voice(person.gender, available, taken, shared)
        taken.add(voice)
        instructions = (wanted.instructions if wanted else None) or (old.instructions if old else None)
        out.append(
            CastCharacter(person.name, person.aliases, lines.get(person.name, 0), person.gender, voice, instructions)
        )
    return out


def _free_voice(
    gender: str | None, available: tuple[str, ...], taken: set[str | None], shared: dict[str | None, int]
) -> str | None:
    """A voice of the gender nobody uses yet; when none is left, the gender's voices in turn."""
    fitting = [v for v in available if gender is None or v in VOICE_GENDERS.get(gender, available)] or list(available)
    free = [v for v in fitting if v not in taken]
    if free:
        return free[0]
    if not fitting:
        return None
    turn = shared.get(gender, 0)
    shared[gender] = turn + 1
    return fitting[turn % len(fitting)]


def speaker_spans(chapters: Sequence[Chapter], cast: CastFile) -> dict[tuple[int, int], list[tuple[int, int, str]]]:
    """Who reads each stretch of each paragraph with a quotation: (chapter, block) -> (begin, end, speaker) over the
    whole paragraph, in order, narration between quotation parts the narrator's. Each boundary falls after the
    whitespace that follows it (a piece keeps its trailing whitespace)."""
    said = {q.id: q.speaker for q in cast.quotations}
    spans: dict[tuple[int, int], list[tuple[int, int, str]]] = {}
    for c, chapter in enumerate(chapters):
        for quotation in find_quotations(c, chapter.blocks):
            speaker = said.get(quotation.id, "narrator")
            for block, (begin, end) in quotation.parts:
                spans.setdefault((c, block), []).append((begin, end, speaker))
    whole: dict[tuple[int, int], list[tuple[int, int, str]]] = {}
    for (c, b), parts in spans.items():
        text = chapters[c].blocks[b].text
        cuts, at = [], 0
        for begin, end, speaker in sorted(parts):
            if begin > at:
                cuts.append((at, begin, "narrator"))
            cuts.append((max(at, begin), end, speaker))
            at = end
        if at < len(text):
            cuts.append((at, len(text), "narrator"))
        whole[c, b] = _after_spaces(text, cuts)
    return whole


def _after_spaces(text: str, cuts: list[tuple[int, int, str]]) -> list[tuple[int, int, str]]:
    """Boundaries moved past the whitespace after them; stretches left with no words join the one before."""
    out: list[tuple[int, int, str]] = []
    for begin, end, speaker in cuts:
        while end < len(text) and text[end].isspace():
            end += 1
        begin = out[-1][1] if out else 0
        if end <= begin:
            continue
        if out and (not text[begin:end].strip() or out[-1][2] == speaker):
            out[-1] = (out[-1][0], end, out[-1][2])
        else:
            out.append((begin, end, speaker))
    return out


def write_missing_cast(job: Job, chapters: Sequence[Chapter], before: Callable[[], None]) -> bool:
    """A run with a cast and no cast file makes the file first, for the editor to correct afterwards (a sample's
    chapters are not the book's: never called for one). With ``attribution: model`` the model is asked, after
    ``before`` (the budget's check, which counts the asking), and True says the book must be prepared again with
    the model's answers."""
    path = cast_path(job.path)
    if job.cast is None or path.exists():
        return False
    asking = job.cast.attribution == "model"
    if asking and job.budget_usd is not None:
        before()
    write_cast(path, cast_of(job, chapters, None, ask_model=asking).cast, job.path.name)
    return asking


def model_requests_to_send(job: Job, chapters: Sequence[Chapter]) -> tuple[list[ModelRequest], int]:
    """What a run would ask the model (attribution: model, and no cast file yet, which is when a run asks): each
    chapter's request whose answer is not cached, and how many quotations they hold."""
    spec = job.cast
    if spec is None or spec.attribution != "model" or cast_path(job.path).exists():
        return [], 0
    cast = Cast([Character(n, list(c.aliases), c.gender or gender_of(n)) for n, c in spec.characters.items()])
    cast.read(block.text for chapter in chapters for block in chapter.blocks)  # as cast_of reads it
    requests, quotations = [], 0
    for index, chapter in enumerate(chapters):
        found = find_quotations(index, chapter.blocks)
        attribute(chapter.blocks, found, cast)  # the names it learns are in the next chapters' requests
        if found and not (request := chapter_request(job, chapter.blocks, found, cast)).path.is_file():
            requests.append(request)
            quotations += len(found)
    return requests, quotations
