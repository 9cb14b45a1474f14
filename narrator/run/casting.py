"""``narrator cast``: the book's quotations found and attributed from the text (text/dialogue/), characters
counted and given voices, written to JOB.cast.yaml for the editor, whose corrections a new cast keeps.

Voices: the narrator keeps the job's voice (or the cast's ``narrator``); each character the cast names keeps its
own; the others, most lines first, get a voice of their gender the narrator and the characters before them do not
use, while the provider has one to spare; after that, minor characters share the voices of their gender in turn.
"""

from __future__ import annotations

from pathlib import Path

from ..job.cast import CastCharacter, CastFile, CastQuotation, cast_path, read_cast, write_cast
from ..job.spec import Job
from ..providers.openai import MODEL_VOICES
from ..synthesis.script import prepare_script
from ..text.dialogue.attribution import Cast, Character, attribute, gender_of
from ..text.dialogue.quotes import excerpt, find_quotations

# How the speech API's voices sound (OpenAI's own descriptions and our listening): for giving a character a voice
# of its gender. A voice not listed is given to anyone.
VOICE_GENDERS = {
    "female": ("coral", "nova", "sage", "shimmer", "marin"),
    "male": ("ash", "ballad", "echo", "onyx", "verse", "cedar"),
}


def make_cast(job: Job) -> tuple[CastFile, int]:
    """The cast of the job's book (the editor's corrections kept from the cast file beside it, if there is one),
    and how many quotations the editor's file decided."""
    spec = job.cast
    assert spec is not None
    script = prepare_script(job)
    known = [Character(name, list(c.aliases), c.gender or gender_of(name)) for name, c in spec.characters.items()]
    cast = Cast(known)
    quotations: list[CastQuotation] = []
    for index, chapter in enumerate(script.chapters):
        found = find_quotations(index, chapter.blocks)
        for q, answer in zip(found, attribute(chapter.blocks, found, cast), strict=True):
            speaker = answer.speaker or "narrator"
            quotations.append(
                CastQuotation(q.id, index + 1, excerpt(chapter.blocks, q), speaker, answer.confidence, answer.how)
            )
    before = read_cast(_path(job))
    kept = 0
    if before is not None:  # the editor's word wins where it can still be placed
        said = {q.id: q for q in before.quotations}
        for k, line in enumerate(quotations):
            old = said.get(line.id)
            if old is not None and old.speaker != line.speaker:
                quotations[k] = CastQuotation(line.id, line.chapter, line.excerpt, old.speaker, 1.0, "editor")
                kept += 1
    lines: dict[str, int] = {}
    for line in quotations:
        lines[line.speaker] = lines.get(line.speaker, 0) + 1
    characters = _characters(job, cast, lines, before)
    narrator = {
        "voice": spec.narrator.voice or job.voice.voice,
        "instructions": spec.narrator.instructions or job.voice.instructions,
    }
    quotations.sort(key=lambda q: q.confidence)  # least sure first (a stable sort: reading order otherwise)
    return CastFile(narrator, characters, quotations), kept


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


def _path(job: Job) -> Path:
    return cast_path(job.path)


def cast_job(job: Job) -> tuple[CastFile, int]:
    """Make the cast and write it beside the job: (the cast, how many of the editor's corrections were kept)."""
    cast, kept = make_cast(job)
    write_cast(_path(job), cast, job.path.name)
    return cast, kept
