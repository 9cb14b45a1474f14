"""The book under review as the page sees it: each chapter's takes with their text, decisions, takes to choose
from, waveform and length; the book's counts; search; where a time on the M4B's timeline falls. Made again from the
job after every change to the review file, so the page always shows what ``run`` would build.
"""

from __future__ import annotations

import re
import threading
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..core.audio import wav_layout
from ..core.records import MANIFEST, Manifest, ManifestTake, read_manifest
from ..job.review import TakeDecision, review_state, stale_decisions
from ..job.spec import Job
from ..providers.transcribe import HeardWord
from ..synthesis.proofs import ProofStore, retake_key
from ..synthesis.script import Script, prepare_script
from ..text.takes import Take
from ..text.transcripts import words
from .payloads import ChapterCounts, Earlier, PageBook, PageChapter, PageProof, PageTake, ProofWord, Voice
from .speakers import cast_panel, quotation_of_chunks, speakers_of

PEAKS = 96  # bars in a take's waveform


@dataclass
class Desk:
    """The job under review: its script (made again after every change to the review file) and last manifest."""

    job: Job
    token: str
    _script: Script | None = None

    def __post_init__(self) -> None:
        self.lock = threading.Lock()
        self.sounds: dict[str, dict[str, Any]] = {}

    @property
    def script(self) -> Script:
        with self.lock:
            if self._script is None:
                self._script = prepare_script(self.job)
            return self._script

    def changed(self) -> None:
        with self.lock:
            self._script = None

    def manifest(self) -> Manifest | None:
        return read_manifest(self.job.output.dir / MANIFEST)

    def opening_chapter(self) -> int:
        """Where the page opens: the first chapter with a take that failed proof-listening, else the first."""
        manifest = self.manifest()
        takes = (manifest.takes if manifest else None) or []
        return min((t.chapter - 1 for t in takes if t.proof and t.proof.verdict == "failed"), default=0)

    def take(self, take_id: str) -> Take | None:
        return next((t for t in self.script.takes if t.id == take_id), None)

    def chapter(self, index: int) -> PageChapter:
        script = self.script
        manifest = self.manifest()
        placed = {c.id: c for c in manifest.chunks} if manifest else {}
        heard = {t.id: t for t in manifest.takes or []} if manifest else {}
        starts = {c.number - 1: c.start for c in manifest.chapters} if manifest else {}
        takes = []
        stale = stale_decisions(script.review, script.takes)
        quotations = quotation_of_chunks(script, index) if script.job.cast is not None else {}
        for take in script.takes_by_chapter[index]:
            current = script.decision(take)
            inherited = stale.get(take.id)
            first = placed.get(take.chunks[0].id)
            variants = [n for n, key in enumerate(script.variant_keys(take)) if script.cache.has(key)]
            flags = sorted({f for c in take.chunks if c.id in placed for f in placed[c.id].flags or []})
            start = None if first is None or first.offset is None else (starts.get(index) or 0.0) + first.offset
            takes.append(
                PageTake(
                    id=take.id,
                    text=script.text_of(take),
                    source=take.text,
                    chunks=[c.id for c in take.chunks],
                    status=current.status if current else "unheard",
                    note=current.note if current else None,
                    overridden=bool(current and current.text),
                    instructions=current.instructions if current else None,
                    stale=inherited is not None,
                    was=Earlier(status=inherited.status, note=inherited.note) if inherited else None,
                    variants=variants,
                    chosen=_chosen(current, variants),
                    start=start,
                    flags=flags,
                    proof=self.proof(heard[take.id]) if take.id in heard and heard[take.id].proof else None,
                    retakes=self.retakes(take),
                    speaker=take.chunks[0].speaker if script.job.cast is not None else None,
                    quotation=quotations.get(take.chunks[0].id),
                    **self.sound(script.key_of(take)),
                )
            )
        return PageChapter(index=index, title=script.chapters[index].title, takes=takes)

    def retakes(self, take: Take) -> list[int]:
        """The proof-listening retakes of a take kept in the cache: the history of what was tried."""
        if self.job.proof is None:
            return []
        key = self.script.key_of(take)
        return [n for n in range(1, self.job.proof.retakes + 1) if self.script.cache.has(retake_key(key, n))]

    def proof(self, take: ManifestTake) -> PageProof:
        """A take's proof as the page shows it (page_proof), with its length and the model's word times."""
        model = self.job.proof.model if self.job.proof else ""
        stored = ProofStore(self.script.cache.root).get(take.audio_hash, model) if take.audio_hash else None
        seconds = self.sound(take.cache_key).get("seconds") or 0.0
        return page_proof(take, seconds, stored[0].words if stored else None)

    def sound(self, key: str) -> dict[str, Any]:
        """A take's waveform (peaks, computed once: editors find clipped starts and runaway takes by eye) and its
        length, which the page's times and click-to-seek use before the audio is loaded."""
        if key not in self.sounds:
            path = self.script.cache.local(key)
            try:
                layout = wav_layout(path)
                with path.open("rb") as f:
                    f.seek(layout.offset)
                    samples = np.frombuffer(f.read(layout.samples * 2), dtype="<i2")
            except (OSError, ValueError):
                return {"waveform": [], "seconds": None}
            bars = np.array_split(np.abs(samples.astype(np.int32)), PEAKS) if samples.size >= PEAKS else []
            peaks = [round(float(b.max()) / 32768, 3) for b in bars]
            self.sounds[key] = {"waveform": peaks, "seconds": round(layout.duration, 3)}
        return self.sounds[key]

    def book(self) -> PageBook:
        script = self.script
        chapters: list[ChapterCounts] = []
        stale = stale_decisions(script.review, script.takes)
        manifest = self.manifest()
        failing = {
            t.id for t in (manifest.takes if manifest else None) or [] if t.proof and t.proof.verdict == "failed"
        }
        for index, chapter in enumerate(script.chapters):
            counts = {"approved": 0, "rejected": 0, "unheard": 0, "stale": 0}
            for take in script.takes_by_chapter[index]:
                state, _ = review_state(script.review, take, stale)
                counts[state if state in counts else "unheard"] += 1
            takes = sum(counts.values())
            failed = sum(1 for t in script.takes_by_chapter[index] if t.id in failing)
            chapters.append(ChapterCounts(index=index, title=chapter.title, takes=takes, proof_failed=failed, **counts))
        characters, voices = cast_panel(script)
        names = ("takes", "approved", "rejected", "unheard", "stale", "proof_failed")
        totals = {name: sum(getattr(c, name) for c in chapters) for name in names}
        return PageBook(
            title=script.document.title,
            chapters=chapters,
            totals=totals,
            lexicon=script.review.lexicon,
            voice=self.voice(),
            speakers=speakers_of(script) if script.job.cast is not None else None,
            cast=characters,
            voices=voices,
        )

    def voice(self) -> Voice:
        """What the page may offer: instructions only where every voice of the book reads them."""
        return Voice(instructions=all(p.profile.takes_instructions for p in self.script.providers()))

    def search(self, query: str, limit: int = 50) -> dict[str, Any]:
        """Takes whose text (as said: the editor's, when edited) holds ``query``, ignoring case, in book order."""
        needle = query.strip().casefold()
        if not needle:
            raise ValueError("search for some text")
        script = self.script
        found = []
        for take in script.takes:
            text = script.text_of(take)
            at = text.casefold().find(needle)
            if at < 0:
                continue
            begin = max(0, at - 40)
            found.append(
                {
                    "chapter": take.chapter,
                    "title": script.chapters[take.chapter].title,
                    "id": take.id,
                    "position": position_of(script, take),
                    "before": ("…" if begin else "") + text[begin:at],
                    "match": text[at : at + len(needle)],
                    "after": text[at + len(needle) : at + len(needle) + 60],
                }
            )
        return {"query": query, "count": len(found), "results": found[:limit]}

    def at(self, seconds: float) -> dict[str, Any] | None:
        """The take playing at ``seconds`` into the book (the M4B's timeline), and how far into it."""
        manifest = self.manifest()
        if manifest is None:
            return None
        starts = {c.number: c.start or 0.0 for c in manifest.chapters}
        for chunk in manifest.chunks:
            if chunk.offset is None or chunk.take is None:
                continue
            begin = starts.get(chunk.chapter, 0.0) + chunk.offset
            if begin <= seconds < begin + (chunk.duration or 0.0) + 2.0:  # a pause belongs to the take before it
                return {"chapter": chunk.chapter - 1, "take": chunk.take, "into": round(seconds - begin, 3)}
        return None


def page_proof(take: ManifestTake, seconds: float, times: tuple[HeardWord, ...] | None) -> PageProof:
    """For a failed take, both texts word by word with the differing words marked, and the span to hear."""
    proof = take.proof
    assert proof is not None
    figures = {"error_rate": proof.error_rate, "longest_run": proof.longest_run, "retakes": proof.retakes}
    if proof.verdict != "failed" or proof.transcript is None:
        return PageProof(verdict=proof.verdict, sent=[], heard=[], span=None, **figures)
    sent, _ = words(take.text)
    heard, _ = words(proof.transcript)
    runs = proof.divergent or []
    marked_sent = [ProofWord(word=w, differs=any(a <= i < b for a, b, _, _ in runs)) for i, w in enumerate(sent)]
    marked_heard = [ProofWord(word=w, differs=any(c <= i < d for _, _, c, d in runs)) for i, w in enumerate(heard)]
    span = _span(runs, len(heard), seconds, times)
    return PageProof(verdict="failed", sent=marked_sent, heard=marked_heard, span=span, **figures)


def _span(runs: list[list[int]], heard: int, seconds: float, times: tuple[HeardWord, ...] | None) -> list[float] | None:
    """Seconds into the take of its longest divergent run: from the model's word times (whisper-1), else by the
    run's place among the words heard; a second either side, so the ear hears it in context."""
    if not runs:
        return None
    _, _, first, last = max(runs, key=lambda r: max(r[1] - r[0], r[3] - r[2]))
    if times and first < len(times):
        begin, end = times[first].start, times[max(first, min(last, len(times)) - 1)].end
    else:
        begin, end = seconds * first / max(1, heard), seconds * last / max(1, heard)
    return [round(max(0.0, begin - 1.0), 2), round(min(seconds, end + 1.0), 2)]


def _chosen(decision: TakeDecision | None, variants: list[int]) -> int | None:
    if not variants:
        return None
    if decision is not None and decision.chosen is not None and decision.chosen in variants:
        return decision.chosen
    return variants[-1]


def parse_time(text: str) -> float:
    """``2:13:05``, ``13:05`` or ``785`` (seconds; decimals allowed) into seconds."""
    if not re.fullmatch(r"\d+(:\d{1,2}){0,2}(\.\d+)?", text.strip()):
        raise ValueError(f"not a time: {text!r}")
    seconds = 0.0
    for part in text.strip().split(":"):
        seconds = seconds * 60 + float(part)
    return seconds


def position_of(script: Script, take: Take) -> int:
    return [t.id for t in script.takes_by_chapter[take.chapter]].index(take.id)
