"""The book as it will be read, before any audio exists: prepared chapters, their chunks, and the cache key of
each chunk's take. What plan, run and the output build all start from."""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from functools import cached_property
from types import MappingProxyType
from typing import TypeVar

from ..core import errors
from ..core.workspace import work_dir
from ..job.cast import cast_of, cast_path, read_cast, speaker_spans
from ..job.review import ReviewFile, TakeDecision, load_review
from ..job.spec import Job
from ..providers import Provider, ProviderContext, VoiceSpec, create_provider
from ..text.chunker import Chunk, Limits, chunk_chapters
from ..text.document import Chapter, Document
from ..text.normalise import Preparer, bare_number
from ..text.sources import load_document, select_chapters
from ..text.takes import Take, group_takes
from ..text.tokens import count_tokens
from .cache import TakeCache, open_cache, take_key


@dataclass(frozen=True)
class Sample:
    """A quick listen (``run --chapters/--sample``): only these chapters of the book (numbers from 1, "3-5",
    titles), and of those only about the first ``minutes`` of speech."""

    chapters: tuple[int | str, ...] | None = None
    minutes: float | None = None

    def job(self, job: Job) -> Job:
        """The job writing to ``<output.dir>/sample/``: a sample never replaces or stales the full build."""
        return job.model_copy(update={"output": job.output.model_copy(update={"dir": job.output.dir / "sample"})})

    def trim(self, chapters: tuple[Chapter, ...], provider: Provider) -> tuple[Chapter, ...]:
        if self.minutes is None:
            return chapters
        left = self.minutes * 60
        kept: list[Chapter] = []
        for chapter in chapters:
            blocks = []
            for block in chapter.blocks:
                blocks.append(block)
                left -= provider.profile.speech_seconds(block.text) if block.text else 0
                if left <= 0 and block.kind == "paragraph":
                    break
            kept.append(replace(chapter, blocks=tuple(blocks)))
            if left <= 0:
                break
        return tuple(kept)


@dataclass(frozen=True)
class TakeEdit:
    """What the editor changed of one take (the review file): the text to say instead, a voice with its own
    instructions."""

    text: str | None = None
    voice: Provider | None = None


@dataclass(frozen=True)
class Script:
    job: Job
    document: Document
    chapters: tuple[Chapter, ...]  # prepared text
    chunks: tuple[Chunk, ...]
    keys: Mapping[str, str]  # chunk id -> cache key of its take
    provider: Provider  # the job's voice
    cache: TakeCache
    voices: tuple[Provider, ...]  # per source, the voice its chapters are read with (the job's, or its own)
    takes: tuple[Take, ...]  # the chunks grouped into requests (takes.py), in reading order
    review: ReviewFile = field(default_factory=ReviewFile)  # the editor's decisions (review.py)
    edits: Mapping[str, TakeEdit] = field(default_factory=dict)  # take id -> what the editor changed of it
    # made anew by each preparation (prepare_script): a run's report counts the preparations its stages used, so
    # that a book prepared twice (a Ray task reading the sources again) shows in report.json
    prepared: str = field(default_factory=lambda: uuid.uuid4().hex, compare=False)

    @cached_property
    def limits(self) -> Limits:
        """One set of limits for the whole book, the tightest of its voices: chunk ids stay the same whichever
        voice reads them."""
        return book_limits(self.job, self.voices)

    @cached_property
    def take_of(self) -> dict[str, Take]:
        """Chunk id -> the take it is read in."""
        return {chunk.id: take for take in self.takes for chunk in take.chunks}

    @cached_property
    def takes_by_chapter(self) -> dict[int, list[Take]]:
        """Each chapter's takes, in reading order; every chapter has an entry."""
        return _by_chapter(self.takes, len(self.chapters))

    def key_of(self, take: Take) -> str:
        return self.keys[take.chunks[0].id]  # every chunk of a take shares its key

    def provider_of(self, chunk: Chunk | Take) -> Provider:
        """The voice a chunk, or a take (one chapter's), is read with."""
        take = chunk if isinstance(chunk, Take) else self.take_of[chunk.id]
        edit = self.edits.get(take.id)
        return edit.voice if edit and edit.voice else self.voices[self.chapters[chunk.chapter].source]

    def text_of(self, take: Take) -> str:
        """What is asked for: the take's text, or the editor's text for it."""
        edit = self.edits.get(take.id)
        return edit.text if edit and edit.text else take.text

    def decision(self, take: Take) -> TakeDecision | None:
        return self.review.decision(take.id, take.text)

    def variant_keys(self, take: Take) -> list[str]:
        """The cache key of each take asked for this request: the first, then each one an editor had redone."""
        decision = self.decision(take)
        fingerprint = self.provider_of(take).fingerprint()
        return [
            variant_key(fingerprint, self.text_of(take), n) for n in range((decision.redone if decision else 0) + 1)
        ]

    def providers(self) -> list[Provider]:
        """Every voice the book is read with, each once."""
        edited = [e.voice for e in self.edits.values() if e.voice is not None]  # the cast's, the editor's
        return list({id(p): p for p in (self.provider, *self.voices, *edited)}.values())

    def cached_keys(self) -> set[str]:
        return {k for k in set(self.keys.values()) if self.cache.has(k)}

    @cached_property
    def by_chapter(self) -> dict[int, list[Chunk]]:
        """Each chapter's chunks, in reading order; every chapter has an entry."""
        return _by_chapter(self.chunks, len(self.chapters))


_Placed = TypeVar("_Placed", Chunk, Take)


def _by_chapter(items: Sequence[_Placed], chapters: int) -> dict[int, list[_Placed]]:
    grouped: dict[int, list[_Placed]] = {i: [] for i in range(chapters)}
    for item in items:
        grouped[item.chapter].append(item)
    return grouped


def effective_limits(job: Job, provider: Provider, voice: VoiceSpec | None = None) -> Limits:
    """The job's chunking limits within the provider's, less what the instructions take where they count."""
    voice = voice or job.voice
    limits = provider.profile.limits
    max_chars = min(job.chunking.max_chars, limits.max_chars or job.chunking.max_chars)
    max_tokens = min(job.chunking.max_tokens, limits.max_tokens or job.chunking.max_tokens)
    if voice.instructions and limits.count_instructions:
        used = count_tokens(voice.instructions)
        if used >= max_tokens - 16:
            raise errors.JobError(
                [f"{job.path}: voice.instructions: {used} tokens leave no room under max_tokens {max_tokens}"]
            )
        max_tokens -= used
    return Limits(max_chars=max_chars, max_tokens=max_tokens)


def provider_for(job: Job, voice: VoiceSpec | None = None) -> Provider:
    """The job's provider, configured (no network, no model loaded): voice, model and key problems show here."""
    context = ProviderContext(concurrency=job.concurrency, scratch=work_dir(job.output.dir))
    return create_provider(voice or job.voice, context)


def source_voices(job: Job, provider: Provider) -> tuple[Provider, ...]:
    """Per source, its provider: the job's, or one per distinct voice of its own (sources that share settings
    share one)."""
    made: dict[str, Provider] = {job.voice.model_dump_json(): provider}
    for source in job.sources:
        if source.voice is not None and source.voice.model_dump_json() not in made:
            made[source.voice.model_dump_json()] = provider_for(job, source.voice)
    return tuple(made[job.voice_for(i).model_dump_json()] for i in range(len(job.sources)))


def book_limits(job: Job, voices: Sequence[Provider], cast_voices: CastVoices | None = None) -> Limits:
    each = [effective_limits(job, p, job.voice_for(i)) for i, p in enumerate(voices)]
    each += [effective_limits(job, p, spec) for spec, p in (cast_voices or {}).values()]  # their instructions
    return Limits(max_chars=min(x.max_chars for x in each), max_tokens=min(x.max_tokens for x in each))


def _take_limits(job: Job, provider: Provider, limits: Limits) -> Limits:
    """A grouped take stays under half of output.max_file_minutes: files are cut only between takes."""
    if job.output.max_file_minutes is None:
        return limits
    chars_per_second = 1000 / max(provider.profile.speech_seconds("x" * 1000), 1e-3)
    cap = int(job.output.max_file_minutes * 60 / 2 * chars_per_second)
    return Limits(max_chars=max(1, min(limits.max_chars, cap)), max_tokens=limits.max_tokens)


def variant_key(fingerprint: dict[str, object], text: str, variant: int) -> str:
    """Take n of a request is cached under a key of its own: several takes of one text coexist."""
    return take_key(fingerprint if variant == 0 else {**fingerprint, "take": variant}, text)


def prepare_script(job: Job, sample: Sample | None = None) -> Script:
    provider = provider_for(job)
    voices = source_voices(job, provider)
    document = load_document(job.sources, title=job.title, author=job.author, cover_path=job.cover)
    if sample is not None and sample.chapters:
        document = select_chapters(document, sample.chapters, "--chapters")
    # only in a book numbered that way: in a glossary titled A, B, C, D, the "C" and "D" are letters
    numerals = sum(bare_number(c.title) is not None for c in document.chapters)
    numbered = job.chapter_titles == "numbered" and numerals * 2 > len(document.chapters)
    review = load_review(job.path)
    preparer = Preparer({**job.lexicon, **review.lexicon}.items(), numbered_titles=numbered)
    chapters = tuple(preparer.chapter(c) for c in document.chapters)
    if sample is not None:
        chapters = sample.trim(chapters, provider)
    speakers, cast_voices = _cast(job, chapters)
    limits = book_limits(job, voices, cast_voices)
    chunks = tuple(chunk_chapters(chapters, limits, speakers))
    target = provider.profile.take_chars if job.chunking.target_chars is None else job.chunking.target_chars
    takes = tuple(group_takes(chunks, _take_limits(job, provider, limits), target))
    keys, edits = _take_keys(job, chapters, takes, voices, review, cast_voices)
    try:
        cache = open_cache(job.cache, job.output.dir)
    except errors.JobError as exc:  # an extra not installed: name the job
        raise errors.JobError([f"{job.path}: {problem}" for problem in exc.problems]) from None
    return Script(
        job,
        document,
        chapters,
        chunks,
        keys,
        provider,
        cache,
        voices,
        takes,
        review,
        MappingProxyType(edits),
    )


CastVoices = Mapping[str, tuple[VoiceSpec, Provider]]  # speaker -> the voice that reads its takes
Speakers = dict[tuple[int, int], list[tuple[int, int, str]]]  # (chapter, block) -> who reads each stretch of it


def _cast(job: Job, chapters: Sequence[Chapter]) -> tuple[Speakers | None, CastVoices]:
    """With a cast: who reads each stretch of each paragraph with dialogue, and the voice of each speaker whose
    voice is not the job's (the cast file's, as the editor left it; attributed afresh where it has no word)."""
    if job.cast is None:
        return None, {}
    cast = cast_of(job, chapters, read_cast(cast_path(job.path))).cast
    made: dict[str, tuple[VoiceSpec, Provider]] = {}
    voices: dict[str, tuple[VoiceSpec, Provider]] = {}
    wanted = [("narrator", cast.narrator.get("voice"), cast.narrator.get("instructions"))]
    wanted += [(c.name, c.voice, c.instructions) for c in cast.characters]
    for speaker, voice, instructions in wanted:
        update = {k: v for k, v in (("voice", voice), ("instructions", instructions)) if v}
        spec = job.voice.model_copy(update=update)
        if spec == job.voice:
            continue
        key = spec.model_dump_json()
        if key not in made:
            made[key] = (spec, provider_for(job, spec))
        voices[speaker] = made[key]
    return speaker_spans(chapters, cast), voices


def _take_keys(
    job: Job,
    chapters: Sequence[Chapter],
    takes: Sequence[Take],
    voices: Sequence[Provider],
    review: ReviewFile,
    cast_voices: CastVoices,
) -> tuple[dict[str, str], dict[str, TakeEdit]]:
    """Each chunk's cache key (its take's: voice, text and take number, as the editor left them), and what the
    editor (or the cast) changed of each take."""
    fingerprints = {id(p): p.fingerprint() for p in voices}
    fingerprints.update({id(p): p.fingerprint() for _, p in cast_voices.values()})
    keys: dict[str, str] = {}
    edits: dict[str, TakeEdit] = {}
    for take in takes:
        source = chapters[take.chapter].source
        spec, voice = cast_voices.get(take.chunks[0].speaker) or (job.voice_for(source), voices[source])
        decision = review.decision(take.id, take.text)
        variant = 0
        cast = voice if voice is not voices[source] else None
        if cast is not None:
            edits[take.id] = TakeEdit(None, cast)
        if decision is not None:  # the editor's text, instructions and chosen take
            edited = cast
            if decision.instructions:
                voice = edited = provider_for(job, spec.model_copy(update={"instructions": decision.instructions}))
                fingerprints[id(voice)] = voice.fingerprint()
            if decision.text or edited:
                edits[take.id] = TakeEdit(decision.text or None, edited)
            variant = decision.redone if decision.chosen is None else min(decision.chosen, decision.redone)
        said = decision.text if decision is not None and decision.text else take.text
        key = variant_key(fingerprints[id(voice)], said, variant)
        keys.update((c.id, key) for c in take.chunks)  # every chunk of a take shares its audio
    return keys, edits
