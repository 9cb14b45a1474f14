"""Proof-listening (issue #24): the judge's thresholds measured on a labelled set, and what hearing costs a run.

1. The labelled set (devtools/proofset.py): 600 takes of a generated novel, half bad (a span of 4-12 words
   skipped, repeated, replaced, the take cut short, another take's text), each spoken by the fake voice, sent to
   the fake's transcription endpoint as FLAC over HTTP, and heard back with isolated slips at 3, 5 and 8 % of the
   words. For each longest-run threshold: bad takes caught, good takes failed.
2. A run of a 300-take book through the fake at 0.3 s a request, with and without ``proof:`` (8 % bad takes):
   wall time, requests of each kind, retakes.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

import httpx
import numpy as np
import yaml

ROOT = Path(__file__).resolve().parent.parent
KEY = "sk-bench-proof"


def _heard_over_http(url: str, said: list[str]) -> list[str]:
    """Each text spoken by the fake voice, sent as FLAC to the fake's transcription endpoint, and its transcript."""
    from devtools.tones import speech_like
    from narrator.core.audio import Audio
    from narrator.providers.transcribe import upload_of

    heard = []
    with httpx.Client(base_url=url, headers={"Authorization": f"Bearer {KEY}"}, timeout=60) as client:
        for text in said:
            name, data = upload_of(Audio(speech_like(text), 24_000))
            answer = client.post("/audio/transcriptions", files={"file": (name, data)}, data={"model": "whisper-1"})
            answer.raise_for_status()
            heard.append(answer.json()["text"])
    return heard


def bench_labelled_set() -> None:
    from devtools.fake_openai import FakeSpeechServer, Faults
    from devtools.proofset import labelled_set
    from narrator.text import transcripts

    print("\n== proof: the judge on a labelled set (600 takes, half bad, spoken and heard over HTTP) ==")
    base = labelled_set(600, slip_rate=0.0, audio=False)  # the texts and what each take said (no slips yet)
    said = [" ".join(c.heard.split()) for c in base]
    for slip_rate in (0.03, 0.05, 0.08):
        with FakeSpeechServer(KEY, Faults(slip_rate=slip_rate, seed=11)) as fake:
            started = time.perf_counter()
            heard = _heard_over_http(fake.url, said)
            seconds = time.perf_counter() - started
        bad = [i for i, c in enumerate(base) if c.fault]
        good = [i for i, c in enumerate(base) if not c.fault]
        print(f"slips {slip_rate:.0%} of words ({seconds:.0f} s for 600 uploads):")
        kept = transcripts.MAX_RUN
        for max_run in (2, 3, 4, 5, 6):
            transcripts.MAX_RUN = max_run
            verdicts = [transcripts.hear(base[i].text, heard[i]) for i in range(len(base))]
            caught = sum(not verdicts[i].passed for i in bad)
            failed = sum(not verdicts[i].passed for i in good)
            missed = Counter(base[i].fault for i in bad if verdicts[i].passed)
            mark = "  <- MAX_RUN" if max_run == kept else ""
            misses = f"; missed {dict(missed)}" if missed else ""
            print(f"  run >= {max_run}: bad caught {caught}/{len(bad)} ({caught / len(bad):.1%}), good failed "
                  f"{failed}/{len(good)} ({failed / len(good):.1%}){misses}{mark}")  # fmt: skip
        transcripts.MAX_RUN = kept


def _book(folder: Path, url: str, proof: bool) -> None:
    from devtools.proofset import takes_of_novel

    paragraphs = takes_of_novel(300, seed=5, least_words=8)
    chapters = [f"# Part {c + 1}\n\n" + "\n\n".join(paragraphs[c * 30 : (c + 1) * 30]) for c in range(10)]
    (folder / "book.md").write_text("\n\n".join(chapters) + "\n", encoding="utf-8")
    spec = {
        "sources": ["book.md"],
        "voice": {"provider": "openai", "base_url": url, "api_key_env": "BENCH_KEY"},
        "output": {"dir": "out", "formats": ["m4b"]},
        "chunking": {"target_chars": 1},
        "concurrency": 8,
    }
    if proof:
        spec["proof"] = {"model": "whisper-1", "retakes": 2, "concurrency": 8}
    (folder / "job.yaml").write_text(yaml.safe_dump(spec), encoding="utf-8")


def bench_proof_run() -> None:
    from devtools.fake_openai import FakeSpeechServer, Faults

    print("\n== proof: a 300-take book at 0.3 s a request (8 % bad takes), concurrency 8 ==")
    for proof in (False, True):
        # vary: a voice never says a text twice the same way, so a retake is new audio, heard anew
        faults = Faults(latency=0.3, bad_take_rate=0.08, slip_rate=0.03, vary=True, seed=3)
        with tempfile.TemporaryDirectory() as tmp, FakeSpeechServer(KEY, faults) as fake:
            folder = Path(tmp)
            _book(folder, fake.url, proof)
            started = time.perf_counter()
            ran = subprocess.run([sys.executable, "-m", "narrator", "run", "job.yaml"], cwd=folder,
                                 env={**os.environ, "BENCH_KEY": KEY}, capture_output=True, text=True)  # fmt: skip
            wall = time.perf_counter() - started
            report = json.loads((folder / "out" / "report.json").read_text())
            ideal = len(fake.records) * 0.3 / 8
            said = np.array([r.served for r in fake.records if r.status == 200])
        extra = ""
        if proof:
            extra = (f", {report['proof']['heard']} heard, {report['proof']['retakes']} retakes, "
                     f"{len(report['proof']['failed'])} still failing")  # fmt: skip
        print(f"  proof {'on ' if proof else 'off'}: exit {ran.returncode}, wall {wall:.1f} s, {len(fake.records)} "
              f"speech requests (ideal Σ latency / concurrency {ideal:.1f} s, wall/ideal {wall / ideal:.2f}, "
              f"mean served {said.mean():.2f} s){extra}")  # fmt: skip


def bench_proof() -> None:
    bench_labelled_set()
    bench_proof_run()
