"""`make bench`: figures, and ratios against the ideal. Never asserted by tests.

python bench/run.py            # every section
python bench/run.py local      # one section: local | openai
"""

from __future__ import annotations

import json
import random
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from narrator.devtools.epub import NavPoint, Page, build_epub  # noqa: E402

VOCABULARY = (
    "the a keeper light sea stone tower wind night morning boat harbour storm wave gull rope lamp oil "
    "island cliff tide path bell salt mist shadow evening window stair door table kettle letter log "
    "quiet long slow grey cold bright small old careful distant warm heavy "
    "climbed watched waited listened carried turned opened closed wrote counted remembered followed"
).split()


def generated_book(path: Path, words: int, chapters: int, seed: int = 7) -> Path:
    """A book of made-up but sentence-shaped prose, each chapter in its own file."""
    rng = random.Random(seed)
    per_chapter = words // chapters
    pages, toc = [], []
    for c in range(chapters):
        paragraphs, count = [], 0
        while count < per_chapter:
            sentences = []
            for _ in range(rng.randint(3, 6)):
                n = rng.randint(6, 18)
                sentences.append(" ".join(rng.choice(VOCABULARY) for _ in range(n)).capitalize() + ".")
                count += n
            paragraphs.append(" ".join(sentences))
        title = f"Chapter {c + 1}"
        body = f"<h1>{title}</h1>" + "".join(f"<p>{p}</p>" for p in paragraphs)
        pages.append(Page(f"ch{c + 1:03d}.xhtml", body, title))
        toc.append(NavPoint(title, f"ch{c + 1:03d}.xhtml"))
    return build_epub(path, title="Benchmark Book", author="Generator", pages=pages, toc=toc)


def run_cli(job: Path) -> tuple[float, int, dict]:
    """Run the real CLI; wall seconds, peak RSS (MB) of the largest process, and the report."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    start = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "narrator", "run", str(job)], capture_output=True, text=True)
    wall = time.perf_counter() - start
    if proc.returncode != 0:
        sys.exit(f"bench run failed:\n{proc.stderr}")
    peak = max(before, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss) // 1024
    report = json.loads((job.parent / "out" / "report.json").read_text())
    return wall, peak, report


def bench_local(words: int = 20_000) -> None:
    print(f"\n== local voice (piper, en_US-joe-medium): a generated book of {words} words ==")
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        generated_book(folder / "book.epub", words, chapters=10)
        job = folder / "job.yaml"
        job.write_text(
            yaml.safe_dump({"sources": ["book.epub"], "output": {"dir": "out"}, "cache": "cache", "concurrency": 2})
        )
        wall, peak, report = run_cli(job)
        manifest = json.loads((folder / "out" / "manifest.json").read_text())
        audio = sum(c["duration"] for c in manifest["chapters"])
        t = report["timings_seconds"]
        chunks = report["chunks"]["total"]
        print(f"chunks: {chunks}   audio: {audio / 60:.1f} min   wall: {wall:.1f} s   peak RSS: {peak} MB")
        print(f"chunks per second:             {chunks / t['synthesis']:.2f}")
        print(f"audio seconds per wall second: {audio / wall:.1f}  (synthesis alone: {audio / t['synthesis']:.1f})")
        for phase in ("prepare", "synthesis", "assembly", "encoding"):
            print(f"  {phase:<10} {t[phase]:7.1f} s  {100 * t[phase] / wall:5.1f} % of wall")
        rest = wall - sum(t[p] for p in ("prepare", "synthesis", "assembly", "encoding"))
        print(f"  {'other':<10} {rest:7.1f} s  {100 * rest / wall:5.1f} % (start-up, manifest, report)")
        wall2, _, report2 = run_cli(job)
        print(f"rerun, nothing changed: {wall2:.1f} s wall, {report2['chunks']['synthesized']} chunks synthesized")


def _openai_book(folder: Path, chunks: int, **job: object) -> Path:
    paragraphs = [f"Paragraph {i}: the keeper climbed the stairs and lit the lamp again." for i in range(chunks - 1)]
    (folder / "story.md").write_text("# Story\n\n" + "\n\n".join(paragraphs) + "\n")
    spec = {"sources": ["story.md"], "output": {"dir": "out", "formats": ["mp3"]}, "cache": "cache", **job}
    path = folder / "job.yaml"
    path.write_text(yaml.safe_dump(spec))
    return path


def _run_against(faults: object, chunks: int, **job: object) -> tuple[dict, list]:
    import os

    from narrator.devtools.fake_openai import FakeSpeechServer

    key = "sk-bench-key"
    with tempfile.TemporaryDirectory() as tmp, FakeSpeechServer(key, faults) as server:  # type: ignore[arg-type]
        voice = {"provider": "openai", "base_url": server.url}
        path = _openai_book(Path(tmp), chunks, voice=voice, **job)
        env = {**os.environ, "OPENAI_API_KEY": key}
        proc = subprocess.run(
            [sys.executable, "-m", "narrator", "run", str(path)], capture_output=True, text=True, env=env
        )
        if proc.returncode != 0:
            sys.exit(f"bench run failed:\n{proc.stderr}")
        return json.loads((Path(tmp) / "out" / "report.json").read_text()), server.records


def bench_openai() -> None:
    from narrator.devtools.fake_openai import Faults

    n, latency, concurrency = 300, 0.4, 8
    print(f"\n== openai provider against the loopback fake: {n} chunks ==")
    report, records = _run_against(Faults(latency=latency), n, concurrency=concurrency)
    wall = report["timings_seconds"]["synthesis"]
    bound = n * latency / concurrency
    print(f"(a) latency {latency * 1000:.0f} ms, concurrency {concurrency}: synthesis {wall:.2f} s, "
          f"bound sum(latency)/{concurrency} = {bound:.2f} s, ratio {wall / bound:.3f} (target <= 1.05)")  # fmt: skip
    rpm = 120
    report, records = _run_against(
        Faults(latency=latency, requests_per_minute=rpm), n, concurrency=concurrency, requests_per_minute=rpm
    )
    wall = report["timings_seconds"]["synthesis"]
    bound = n / rpm * 60
    limited = sum(r.status == 429 for r in records)
    print(f"(b) server and job at {rpm} RPM: synthesis {wall:.1f} s, bound requests/RPM = {bound:.1f} s, "
          f"ratio {wall / bound:.3f} (target <= 1.10); 429s: {limited} of {len(records)} requests "
          f"= {100 * limited / len(records):.2f} % (target < 1 %)")  # fmt: skip


SECTIONS = {"local": bench_local, "openai": bench_openai}

if __name__ == "__main__":
    chosen = sys.argv[1:] or list(SECTIONS)
    for name in chosen:
        SECTIONS[name]()
