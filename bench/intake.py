"""Intake (issue #27): how close synthesis stays to its bound when the answers are fast and the bodies big.

The fake answers every request in 0.4 s (time to its last byte) with takes of about 30 s or 60 s of real speech
(the local voice, looped by the fake: cheap to serve, so the fake is not what is measured), at concurrency 8 and
32, while the back end encodes an MP3 per chapter and the M4B. The bound is Σ latency / concurrency with the
latency each request really had at the fake (time from its arrival to its last byte)."""

from __future__ import annotations

import itertools
import os
import sys
import tempfile
from pathlib import Path

import yaml

sys.path.insert(0, str(Path(__file__).parent))
from takes import KEY, _run

LATENCY = 0.4
CHARS_PER_SECOND = 15.0  # the fake's speech (devtools/tones.py)
# (seconds of audio a take, concurrency, the synthesis bound the book is sized for): long enough that fixed costs (a
# first connection, imports, intake processes starting: ~0.4 s) are a few % of it, short enough that the back end's
# share (25 s an audio hour a core) stays minutes: concurrency 32 with 60 s takes is still 13 hours of audio
CONFIGS = ((30, 8, 20.0), (60, 8, 20.0), (30, 32, 10.0), (60, 32, 10.0))


def _job(folder: Path, url: str, take_seconds: int, concurrency: int, bound: float) -> Path:
    from devtools.novel import generate_novel

    requests = round(bound * concurrency / LATENCY)
    words = round(requests * take_seconds * CHARS_PER_SECOND / 5.6)  # ~5.6 characters a word with its space
    (folder / "novel.md").write_text(generate_novel(words, seed=5), encoding="utf-8")
    voice = {"provider": "openai", "base_url": url}
    if (processes := os.environ.get("INTAKE_PROCESSES")) is not None:  # else narrator's choice by concurrency
        voice["intake_processes"] = int(processes)
    spec = {"sources": ["novel.md"], "voice": voice,
            "output": {"dir": "out", "formats": ["m4b", "mp3"]}, "cache": "cache", "concurrency": concurrency,
            "chunking": {"target_chars": round(take_seconds * CHARS_PER_SECOND)}}  # fmt: skip
    job = folder / "job.yaml"
    job.write_text(yaml.safe_dump(spec))
    return job


def _one(voice: bytes, take_seconds: int, concurrency: int, bound_seconds: float) -> None:
    from devtools.fake_openai import FakeSpeechServer, Faults

    with (
        tempfile.TemporaryDirectory(dir=os.environ.get("BENCH_TMP")) as tmp,
        FakeSpeechServer(KEY, Faults(latency=LATENCY), voice_sample=voice) as fake,
    ):
        report, wall = _run(_job(Path(tmp), fake.url, take_seconds, concurrency, bound_seconds))
        answered = [r for r in fake.records if r.status == 200]
        served = [r.served for r in answered]
        idle = _idle_slots(answered, concurrency)
        pcm = sum(f.stat().st_size for f in (Path(tmp) / "cache").rglob("*.wav"))
    synthesis = report["timings_seconds"]["synthesis"]
    bound = sum(served) / concurrency
    print(f"takes of ~{take_seconds} s, concurrency {concurrency:>2}: {len(served)} requests, synthesis "
          f"{synthesis:.1f} s against its bound {bound:.1f} s: ratio {synthesis / bound:.3f} (target <= 1.05); "
          f"{pcm / 1e6 / synthesis:.0f} MB/s of PCM taken in ({pcm / 1e6 / bound:.0f} offered); "
          f"wall {wall:.1f} s; requests in flight at the fake short of {concurrency}: {idle}")  # fmt: skip


def _idle_slots(records: list, concurrency: int) -> str:
    """Slot-seconds the fake had no request in, by when: the first second, the middle, the last second (a request
    in flight from its record to its last byte)."""
    start, end = min(r.time for r in records), max(r.time + r.served for r in records)
    edges = [start, start + 1.0, end - 1.0, end]

    def busy(a: float, b: float) -> float:
        return sum(max(0.0, min(b, r.time + r.served) - max(a, r.time)) for r in records)

    parts = [concurrency * (b - a) - busy(a, b) for a, b in itertools.pairwise(edges)]
    return f"{parts[0]:.1f} slot-s in the first second, {parts[1]:.1f} in the middle, {parts[2]:.1f} in the last"


def bench_intake() -> None:
    from run import _recorded_voice

    print(f"\n== intake: the fake at {LATENCY * 1000:.0f} ms a request, takes of 30 s and 60 s of speech, "
          f"m4b + mp3 encoding meanwhile, {os.cpu_count()} cores ==")  # fmt: skip
    voice = _recorded_voice(60.0)
    wanted = [c for c in CONFIGS if not (only := os.environ.get("INTAKE_ONLY")) or f"{c[0]}x{c[1]}" in only]
    for take_seconds, concurrency, bound in wanted:
        _one(voice, take_seconds, concurrency, bound)


if __name__ == "__main__":
    bench_intake()
