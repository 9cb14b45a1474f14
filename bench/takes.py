"""Takes of natural length (issue #12): requests and wall time for a generated novel through the loopback fake,
one paragraph per request against grouped takes; and how close assembly places paragraph seams inside a grouped
take of the local voice."""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

KEY = "sk-bench-key"
# The fake server's latency: 0.3 s a request plus 1 ms a character. Speech runs ~15 characters a second, so the
# fake speaks ~65x faster than real time, the real endpoint about 4x (providers/openai.py). At 0.1 ms a character
# (600x) the run is bound by narrator's intake of PCM instead: bench/intake.py.
OVERHEAD, PER_CHAR = 0.3, 0.001
CONCURRENCY = 8


BACK_END = ("assembly", "mastering", "encoding", "book_encoding", "remux")


def _novel_job(
    folder: Path, server_url: str, target: int, words: int, formats: tuple[str, ...] = ("m4b", "mp3")
) -> Path:
    from devtools.novel import generate_novel

    (folder / "novel.md").write_text(generate_novel(words, seed=1), encoding="utf-8")
    spec = {"sources": ["novel.md"], "voice": {"provider": "openai", "base_url": server_url},
            "output": {"dir": f"out-{target}", "formats": list(formats)}, "cache": f"cache-{target}",
            "concurrency": CONCURRENCY, "chunking": {"target_chars": target}}  # fmt: skip
    job = folder / f"job-{target}.yaml"
    job.write_text(yaml.safe_dump(spec))
    return job


def _run(job: Path) -> tuple[dict, float]:
    started = time.monotonic()
    proc = subprocess.run([sys.executable, "-m", "narrator", "run", str(job)], capture_output=True, text=True,
                          env={**os.environ, "OPENAI_API_KEY": KEY})  # fmt: skip
    wall = time.monotonic() - started
    if proc.returncode != 0:
        sys.exit(f"bench run failed:\n{proc.stderr}")
    spec = yaml.safe_load(job.read_text())
    return json.loads((job.parent / spec["output"]["dir"] / "report.json").read_text()), wall


def _runs(report: dict) -> str:
    runs = report.get("stage_runs", {})
    return ", ".join(f"{k} {runs.get(k, 0)}" for k in ("encoding", "book_encoding", "remux")) or "none"


def bench_takes(words: int = 120_000, targets: tuple[int, ...] = (0, 1800)) -> None:
    from devtools.fake_openai import FakeSpeechServer, Faults

    latency = f"{OVERHEAD * 1000:.0f} ms + {PER_CHAR * 1000:.1f} ms/char a request"
    cores = os.cpu_count() or 1
    print(f"\n== takes of natural length: a {words}-word novel through the fake, {latency}, concurrency "
          f"{CONCURRENCY}, {cores} cores ==")  # fmt: skip
    for target in targets:
        with tempfile.TemporaryDirectory() as tmp, FakeSpeechServer(KEY, Faults(
            latency=OVERHEAD, latency_per_char=PER_CHAR)) as server:  # fmt: skip
            folder = Path(tmp)
            job = _novel_job(folder, server.url, target, words)
            report, wall = _run(job)
            inputs = [r.input for r in server.records if r.status == 200]
            served = sum(r.served for r in server.records if r.status == 200)
            if target:
                again, again_wall = _run(job)
                novel = folder / "novel.md"
                text = novel.read_text(encoding="utf-8")
                at = text.index(" the ", len(text) // 2)  # a one-word edit in the middle of the book
                novel.write_text(text[:at] + " the old" + text[at + 4 :], encoding="utf-8")
                edited, edited_wall = _run(job)
        paragraphs = report["chunks"]["total"]
        latency = sum(OVERHEAD + PER_CHAR * len(text) for text in inputs)
        bound = latency / CONCURRENCY
        synthesis = report["timings_seconds"]["synthesis"]
        back_end = sum(report["stage_seconds"].get(k, 0.0) for k in BACK_END)
        ideal = max(synthesis, back_end / cores)
        cpu = report["timings_seconds"].get("cpu", 0.0)
        by_cpu = max(synthesis, cpu / cores)
        stages = ", ".join(f"{k} {report['stage_seconds'].get(k, 0.0):.0f}" for k in BACK_END)
        label = "one paragraph a request" if target == 0 else f"takes of ~{target} chars"
        print(f"{label:>24}: {len(inputs)} requests for {paragraphs} chunks ({len(inputs) / paragraphs:.2f}), "
              f"sum of latency {latency:.0f} s, synthesis {synthesis:.1f} s against its bound {bound:.1f} s "
              f"(ratio {synthesis / bound:.3f}; against the latency the fake really gave, {served:.0f} s in all, "
              f"{synthesis / (served / CONCURRENCY):.3f}); back end busy {back_end:.1f} s "
              f"({stages}); "
              f"wall {wall:.1f} s against max(synthesis, back end / {cores} cores) = {ideal:.1f} s "
              f"(ratio {wall / ideal:.3f}); CPU {cpu:.0f} s in all: against max(synthesis, CPU / {cores} cores) "
              f"= {by_cpu:.1f} s the ratio is {wall / by_cpu:.3f}")  # fmt: skip
        if target:
            print(f"{'unchanged rerun':>24}: {again['requests']} requests, files made: {_runs(again)}; "
                  f"wall {again_wall:.1f} s")  # fmt: skip
            print(f"{'one-word edit':>24}: {edited['requests']} requests, files made: {_runs(edited)}; "
                  f"wall {edited_wall:.1f} s")  # fmt: skip


def bench_seams(takes: int = 40) -> None:
    """Paragraph seams inside grouped takes of the local voice: where assembly cuts (assemble.find_seams) against
    where piper began each paragraph's first sentence, and its first sound."""
    import asyncio
    import random

    import numpy as np

    from devtools.novel import generate_novel
    from narrator.build.assemble import find_seams, quiet_frames, trim
    from narrator.core.audio import Audio, frame_energy
    from narrator.job.spec import VoiceSpec
    from narrator.providers.local import LocalProvider
    from narrator.text.chunker import spoken_sentences

    print("\n== paragraph seams in grouped takes: the local voice ==")
    rng = random.Random(3)
    paragraphs = [p for p in generate_novel(20_000, seed=9).split("\n\n") if not p.startswith("#")]
    provider = LocalProvider(VoiceSpec())
    provider._load()
    errors: list[float] = []
    heard = missed = 0
    for _ in range(takes):
        start = rng.randrange(len(paragraphs) - 5)
        group = paragraphs[start : start + rng.randint(2, 5)]
        text = "\n\n".join(group)
        starts: list[int] = []
        audio: Audio = provider._speak(text, starts)
        counts = [len(spoken_sentences(p)) for p in group]
        if sum(counts) != len(starts):  # piper split the text differently: not comparable
            continue
        body = trim(audio, audio.rate)
        lead = audio.pcm.find(body) // 2
        energy = frame_energy(body, audio.rate // 100)
        loud = ~quiet_frames(energy)
        firsts = np.cumsum([0, *counts[:-1]])[1:]  # the sentence that opens each paragraph after the first
        for seam, first in zip(find_seams([len(p) for p in group], energy, 0.01), firsts, strict=True):
            begun = (starts[first] - lead) / audio.rate
            sound = (round(begun * 100) + int(np.argmax(loud[round(begun * 100) :]))) * 0.01
            if seam.heard:
                heard += 1
                errors.append(abs(seam.end - sound) * 1000)
            else:
                missed += 1
    asyncio.run(provider.aclose())
    ms = np.array(errors)
    print(f"{heard + missed} seams: {heard} cut in a pause, {missed} left uncut; where cut, the next paragraph's "
          f"first sound is {statistics.median(errors):.0f} ms from the cut (median), 95th percentile "
          f"{np.percentile(ms, 95):.0f} ms, worst {ms.max():.0f} ms")  # fmt: skip


if __name__ == "__main__":
    bench_seams()
    bench_takes(int(sys.argv[1]) if len(sys.argv) > 1 else 120_000)
