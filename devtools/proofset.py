"""A labelled set for proof-listening: takes of a generated novel, half of them bad in one of the ways speech
models fail (a span of 4-12 words skipped, said twice, replaced, the take cut short, another take's text said),
every one spoken by the fake voice and heard back by the fake ear with isolated slips, as transcription makes
them on correct speech. Each case knows whether its take is bad: what the judge's thresholds are measured on
(bench/proof.py, tests/test_proof.py)."""

from __future__ import annotations

import random
from dataclasses import dataclass

import numpy as np

from .fake_listener import BAD_KINDS, bad_take, slip
from .novel import generate_novel
from .tones import listen, speech_like, spoken


@dataclass(frozen=True)
class Case:
    text: str  # what the take was asked to say
    heard: str  # its transcript
    fault: str | None  # the kind of bad take, or None for a good one


def takes_of_novel(count: int, seed: int, least_words: int = 14) -> list[str]:
    """``count`` takes of at least ``least_words`` words: a novel's paragraphs, short ones run together."""
    paragraphs = [p for p in generate_novel(count * 60, seed).split("\n\n") if not p.startswith("#")]
    takes, current = [], ""
    for paragraph in paragraphs:
        current = f"{current} {paragraph}".strip()
        if len(current.split()) >= least_words:
            takes.append(current)
            current = ""
        if len(takes) == count:
            break
    return takes


def labelled_set(takes: int = 600, slip_rate: float = 0.03, seed: int = 7, audio: bool = True) -> list[Case]:
    """Half good, half bad (the kinds in turn). ``audio``: each take spoken and heard through the tones (else its
    words are heard as written, with the same slips: a fast stand-in)."""
    rng = random.Random(seed)
    texts = takes_of_novel(takes, seed)
    cases = []
    for i, text in enumerate(texts):
        fault = BAD_KINDS[(i // 2) % len(BAD_KINDS)] if i % 2 else None
        said = text if fault is None else bad_take(text, fault, rng, (4, 12), texts[:i] or texts[1:2])
        if audio:
            samples = np.frombuffer(speech_like(said), dtype="<i2").astype(np.float64) / 32768
            words = [w for w, _, _ in listen(samples, 24_000)]
        else:
            words = [w for w in (spoken(w) for w in said.split()) if w]
        heard = " ".join(slip(w, rng) if rng.random() < slip_rate else w for w in words)
        cases.append(Case(text, heard, fault))
    return cases
