"""Proof-listening (``proof:`` in the job): every take heard back through a transcription endpoint, judged
against the text it was sent (text/transcripts.py), and a take that says something else made again.

A take is heard once, as soon as it is stored (while synthesis goes on, under its own pace: the proof's requests
per minute and concurrency); what was heard is stored by the take's audio hash and the model (``<cache>/proofs/``),
so an unchanged rerun, or another book with the same take, hears nothing, and a take approved by an editor is
never heard. A take that fails is requested again (a retake, cached under a key of its own: ``retake_key``), up to
``proof.retakes`` times, each heard in its turn; the best by proof (passed first, then the shortest divergent run,
then the lowest error rate) is put under the take's own key, the others keep theirs (the review history). A take
whose every retake fails too is kept, flagged ``proof_failed``. A chapter is built once each of its takes is
settled (``settled``: passed, approved, or failed for good).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import hashlib
import json
import os
from collections.abc import Awaitable, Callable, Sequence
from collections.abc import Set as AbstractSet
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

from tenacity import AsyncRetrying, retry_if_exception, stop_after_attempt, wait_exponential_jitter

from ..core import errors
from ..core.audio import Audio, atomic_write
from ..core.records import TakeProof
from ..job.spec import Job, ProofSpec
from ..providers.transcribe import HeardWord, ProofUnavailable, Transcriber, Transcript, hearing_cost
from ..text.transcripts import Run, hear
from .costs import expected_cost, price_for, request_cost
from .scheduler import Limiter, SynthesisOutcome, Work
from .script import Script

Request = Callable[[Sequence[Work], Callable[[str], None]], Awaitable[SynthesisOutcome]]  # takes to make, stored


def proof_endpoint(job: Job, spec: ProofSpec) -> tuple[str, str]:
    """(base URL, the variable holding the key) of the transcription endpoint: the proof's own, else the voice's
    (an OpenAI-compatible voice), else OpenAI's."""
    voice = job.voice
    base_url = spec.base_url or getattr(voice, "base_url", None) or os.environ.get("OPENAI_BASE_URL")
    key_env = spec.api_key_env or getattr(voice, "api_key_env", None) or "OPENAI_API_KEY"
    return base_url or "https://api.openai.com/v1", key_env


def retake_key(key: str, n: int) -> str:
    """The cache key of retake ``n`` (from 1) of the take cached under ``key``."""
    return hashlib.sha256(f"{key}/retake/{n}".encode()).hexdigest()


@dataclass(frozen=True)
class Heard:
    """One take heard: its transcript and the verdict on it."""

    audio_hash: str
    model: str
    transcript: str
    error_rate: float
    longest_run: int
    passed: bool
    runs: tuple[Run, ...] = ()
    words: tuple[HeardWord, ...] | None = None  # with word times (whisper-1)
    seconds: float = 0.0  # the audio's length (what the endpoint bills)

    def rank(self) -> tuple[bool, int, float]:
        return (not self.passed, self.longest_run, self.error_rate)


class ProofStore:
    """What was heard, by audio hash and model: ``root/proofs/ab/<hash>-<model>.json``. The transcript only: the
    verdict is the transcript against the text of the take asking (the same audio may be another take's, as when a
    relay answers one request with another's audio)."""

    def __init__(self, root: Path):
        self.root = root / "proofs"

    def path(self, audio_hash: str, model: str) -> Path:
        return self.root / audio_hash[:2] / f"{audio_hash}-{model}.json"

    def get(self, audio_hash: str, model: str) -> tuple[Transcript, float] | None:
        """(what was heard, the audio's seconds), or None."""
        try:
            data = json.loads(self.path(audio_hash, model).read_text(encoding="utf-8"))
            words = data["words"]
            heard = tuple(HeardWord(**w) for w in words) if words is not None else None
            return Transcript(data["text"], heard), float(data["seconds"])
        except (OSError, ValueError, TypeError, KeyError):
            return None

    def put(self, audio_hash: str, model: str, transcript: Transcript, seconds: float) -> None:
        path = self.path(audio_hash, model)
        path.parent.mkdir(parents=True, exist_ok=True)
        words = [asdict(w) for w in transcript.words] if transcript.words is not None else None
        data = {"audio_hash": audio_hash, "model": model, "text": transcript.text, "words": words, "seconds": seconds}
        atomic_write(path, json.dumps(data).encode("utf-8"))


@dataclass
class TakeHearing:
    """What proof-listening made of one take (its cache key): every take of it heard, the one in the book."""

    key: str
    text: str
    heard: list[Heard] = field(default_factory=list)  # the takes of it, in the order made
    keys: list[str] = field(default_factory=list)  # the cache key each was made under
    approved: bool = False  # an editor approved it: never heard

    @property
    def best(self) -> int | None:
        return min(range(len(self.heard)), key=lambda i: self.heard[i].rank()) if self.heard else None

    @property
    def passed(self) -> bool:
        return self.approved or (self.best is not None and self.heard[self.best].passed)

    def row(self, model: str) -> TakeProof | None:
        """The manifest's word on it (None: never heard, its take was not made)."""
        if self.approved:
            return TakeProof(model=model, verdict="approved")
        if (best := self.best) is None:
            return None
        heard = self.heard[best]
        failed = not heard.passed
        return TakeProof(
            model=model,
            verdict="failed" if failed else "passed",
            error_rate=heard.error_rate,
            longest_run=heard.longest_run,
            retakes=len(self.heard) - 1,
            transcript=heard.transcript if failed else None,
            divergent=[[r.sent_start, r.sent_end, r.heard_start, r.heard_end] for r in heard.runs] if failed else None,
        )


@dataclass
class ProofOutcome:
    takes: dict[str, TakeHearing] = field(default_factory=dict)  # by the take's cache key
    requests: int = 0  # transcription requests made in this run
    seconds_heard: float = 0.0  # audio uploaded in this run
    retakes: int = 0  # new takes requested in this run
    retake_cost_usd: float = 0.0  # what they cost
    over_budget: set[str] = field(default_factory=set)  # failing takes not retaken: budget_usd would be passed
    synthesis: SynthesisOutcome = field(default_factory=SynthesisOutcome)  # the retakes' requests
    model: str = ""

    @property
    def cost_usd(self) -> float:
        return round(hearing_cost(self.model, self.seconds_heard), 4)

    def failed(self) -> list[str]:
        """The cache keys of the takes heard that still fail."""
        return [key for key, proof in self.takes.items() if proof.heard and not proof.passed]


class Proofreader:
    """Hears the takes of one book (``stored`` as each is stored), asks for retakes (``finish``), and tells the
    build each take it has settled (``settled``)."""

    def __init__(self, script: Script, spec: ProofSpec, settled: Callable[[str], None]):
        self.script, self.spec, self.settled = script, spec, settled
        self.transcriber = Transcriber(*proof_endpoint(script.job, spec), spec.model)
        self.store = ProofStore(script.cache.root)
        self.limiter = Limiter(spec.requests_per_minute, None)
        self.slots = asyncio.Semaphore(spec.concurrency)
        self.outcome = ProofOutcome(model=spec.model)
        self.work: dict[str, Work] = {}
        for take in script.takes:
            key = script.key_of(take)
            if key not in self.work:
                self.work[key] = Work(key, script.text_of(take), take.tokens, script.provider_of(take))
                decision = script.decision(take)
                approved = decision is not None and decision.status == "approved"
                self.outcome.takes[key] = TakeHearing(key, script.text_of(take), approved=approved)
        self.hearing: list[asyncio.Task[None]] = []
        self.respellings = {said: word for word, said in script.job.lexicon.items()}  # heard as the word it spells

    def settled_before(self, stored: AbstractSet[str]) -> set[str]:
        """The stored takes already settled by what was heard before (passed, or approved): their chapters need
        not wait for them, so an unchanged rerun's build finds nothing to do from the start."""
        settled = set()
        for key, proof in self.outcome.takes.items():
            if key not in stored:
                continue
            digest = self.script.cache.audio_hash(key)
            known = self.store.get(digest, self.spec.model) if digest else None
            if proof.approved or (known is not None and hear(proof.text, known[0].text, self.respellings).passed):
                settled.add(key)
        return settled

    def start(self, stored: AbstractSet[str]) -> None:
        """Hear the takes already stored (most from the proof store: heard in an earlier run)."""
        for key in self.work:
            if key in stored:
                self.stored(key)

    def stored(self, key: str, base: str | None = None) -> None:
        """Take ``key`` (a retake of ``base``) is stored: hear it, on the event loop's thread."""
        self.hearing.append(asyncio.create_task(self._hear(key, base or key)))

    async def _hear(self, key: str, base: str) -> None:
        proof = self.outcome.takes[base]
        if proof.approved:
            if key == base:
                self.settled(base)
            return
        heard = await self.hear(key, proof.text)
        proof.heard.append(heard)
        proof.keys.append(key)
        if key == base and (heard.passed or self.spec.retakes == 0):
            self.settled(base)

    async def hear(self, key: str, text: str) -> Heard:
        cache, model = self.script.cache, self.spec.model
        digest = await asyncio.to_thread(cache.audio_hash, key)
        if digest is None:
            raise errors.TakeVanished()
        known = await asyncio.to_thread(self.store.get, digest, model)
        if known is None:
            audio = await asyncio.to_thread(cache.get, key)
            if audio is None:
                raise errors.TakeVanished()
            known = await self._transcribe(audio), round(audio.duration, 3)
            self.outcome.requests += 1
            self.outcome.seconds_heard += audio.duration
            await asyncio.to_thread(self.store.put, digest, model, *known)
        transcript, seconds = known
        verdict = hear(text, transcript.text, self.respellings)
        return Heard(
            digest,
            model,
            transcript.text,
            verdict.error_rate,
            verdict.longest_run,
            verdict.passed,
            verdict.runs,
            transcript.words,
            seconds,
        )

    async def _transcribe(self, audio: Audio) -> Transcript:
        retrying = AsyncRetrying(
            retry=retry_if_exception(lambda e: isinstance(e, errors.RetryableProviderError)),
            stop=stop_after_attempt(self.script.job.retry.attempts),
            wait=wait_exponential_jitter(initial=0.5, max=30.0),
            reraise=True,
        )
        try:
            async for attempt in retrying:
                with attempt:
                    await self.limiter.acquire(0)
                    async with self.slots:
                        try:
                            return await self.transcriber.transcribe(audio)
                        except errors.RateLimited as exc:
                            self.limiter.rate_limited(exc.retry_after)
                            raise
        except (errors.FatalProviderError, errors.RetryableProviderError, errors.ChunkRejected) as exc:
            if isinstance(exc, ProofUnavailable):
                raise
            raise ProofUnavailable(f"proof: {exc}") from None
        raise AssertionError("unreachable")

    async def finish(self, request: Request, spent: float = 0.0) -> ProofOutcome:
        """Every take heard; the failing ones retaken, heard, and the best put in place; every take settled.
        ``spent``: what this run's takes cost before their retakes, which stop short of the job's ``budget_usd``."""
        try:
            await self._drain()
            for n in range(1, self.spec.retakes + 1):
                failing = [k for k, p in self.outcome.takes.items() if not p.passed and len(p.heard) == n]
                failing = self._affordable(failing, spent)
                if not failing:
                    break
                retakes = {retake_key(k, n): k for k in failing}
                cache = self.script.cache
                work = [replace(self.work[k], key=r) for r, k in retakes.items() if not cache.has(r)]
                for r, k in retakes.items():
                    if cache.has(r):  # made by an earlier run
                        self.stored(r, k)
                made = await request(work, functools.partial(self._retake_stored, retakes))
                self.outcome.retakes += made.requests
                self.outcome.synthesis = self.outcome.synthesis.plus(made)
                for w in work:
                    if (result := made.results.get(w.key)) is not None and result.status == "synthesized":
                        price = price_for(self.script.job, w.provider.profile)
                        self.outcome.retake_cost_usd += request_cost(price, w.tokens, len(w.text), result.duration)
                await self._drain()
            for key, proof in self.outcome.takes.items():
                if proof.heard:  # a take never made is not settled: its chapter is not built
                    await asyncio.to_thread(self._put_best, key, proof)
                    self.settled(key)
        finally:
            await self.transcriber.aclose()
        return self.outcome

    def _affordable(self, failing: list[str], spent: float) -> list[str]:
        """The failing takes whose retakes, made and heard, keep the run within ``budget_usd`` (each priced at the
        audio its text should give, as the plan prices a take); the others are left failing, for the editor."""
        budget = self.script.job.budget_usd
        if budget is None:
            return failing
        left = budget - spent - self.outcome.cost_usd - self.outcome.retake_cost_usd
        affordable = []
        for key in failing:
            work = self.work[key]
            profile = work.provider.profile
            cost = expected_cost(self.script.job, profile, work.tokens, len(work.text), work.text)
            cost += hearing_cost(self.spec.model, profile.speech_seconds(work.text))
            if cost > left:
                self.outcome.over_budget.add(key)
                continue
            left -= cost
            affordable.append(key)
        return affordable

    def abort(self) -> None:
        """The run stops: no take is heard any more."""
        for task in self.hearing:
            task.cancel()

    def _retake_stored(self, retakes: dict[str, str], key: str) -> None:
        self.stored(key, retakes[key])

    async def _drain(self) -> None:
        while self.hearing:
            pending, self.hearing = self.hearing, []
            results = await asyncio.gather(*pending, return_exceptions=True)
            for result in results:
                if isinstance(result, BaseException):
                    for task in self.hearing:
                        task.cancel()
                    raise result

    def _put_best(self, key: str, proof: TakeHearing) -> None:
        """The best take of ``key`` under ``key`` itself (the build reads it there); the one it replaces takes
        the winner's retake key."""
        best = proof.best
        if best is None or proof.keys[best] == key:
            return
        other = proof.keys[best]
        with contextlib.suppress(FileNotFoundError):
            self.script.cache.exchange(key, other)
            first = proof.keys.index(key)
            proof.keys[first], proof.keys[best] = other, key
