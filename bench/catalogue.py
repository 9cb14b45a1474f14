"""The nightly catalogue (issue #14): 20 generated books through the loopback fake limited to 600 requests a
minute, as one catalogue run (one limiter for the account, concurrency 16) against the same books as 20 separate
processes started at once. Wall time against the account's bound (requests / RPM), and the 429s each way drew."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

KEY = "sk-bench-key"
OVERHEAD, PER_CHAR = 0.3, 0.0001  # the fake server's latency: 0.3 s a request plus 0.1 ms a character
RPM, CONCURRENCY = 600, 16
# Short takes (articles, dialogue): the account's requests a minute, not generation, bound such a catalogue. With
# 1 800-character takes, 600 a minute would be 20 hours of audio a minute: no 2-core machine encodes that fast.
TARGET_CHARS = 250


def _books(folder: Path, url: str, books: int, words: int) -> list[Path]:
    from devtools.novel import generate_novel

    jobs = []
    for n in range(books):
        (folder / f"book{n:02d}.md").write_text(generate_novel(words, seed=100 + n, chapter_words=500), "utf-8")
        spec = {"sources": [f"book{n:02d}.md"], "title": f"Book {n + 1}",
                "voice": {"provider": "openai", "base_url": url}, "output": {"dir": f"out{n:02d}", "formats": ["mp3"]},
                "cache": "cache", "concurrency": CONCURRENCY, "requests_per_minute": RPM,
                "chunking": {"target_chars": TARGET_CHARS}}  # fmt: skip
        jobs.append(folder / f"job{n:02d}.yaml")
        jobs[-1].write_text(yaml.safe_dump(spec, sort_keys=False), "utf-8")
    return jobs


def _statuses(records: list) -> tuple[int, int]:
    return sum(1 for r in records if r.status == 200), sum(1 for r in records if r.status == 429)


def bench_catalogue(books: int = 20, words: int = 3_000) -> None:
    from devtools.fake_openai import FakeSpeechServer, Faults
    from narrator.text.tokens import count_tokens

    count_tokens("the fake server counts tokens as the API does: its encoder is built before the clock starts")
    env = {**os.environ, "OPENAI_API_KEY": KEY}
    faults = Faults(latency=OVERHEAD, latency_per_char=PER_CHAR, requests_per_minute=RPM)
    print(f"\n== a catalogue of {books} generated books ({words} words each, takes of ~{TARGET_CHARS} characters) "
          f"through the fake at {RPM} RPM, {OVERHEAD * 1000:.0f} ms + {PER_CHAR * 1000:.1f} ms/char a request, "
          f"concurrency {CONCURRENCY}, {os.cpu_count()} cores ==")  # fmt: skip
    with tempfile.TemporaryDirectory() as tmp:
        together, apart = Path(tmp) / "catalogue", Path(tmp) / "apart"
        together.mkdir()
        apart.mkdir()
        with FakeSpeechServer(KEY, faults) as fake:
            _books(together, fake.url, books, words)
            (together / "catalogue.yaml").write_text(
                yaml.safe_dump({"jobs": ["job*.yaml"], "requests_per_minute": RPM, "concurrency": CONCURRENCY})
            )
            started = time.monotonic()
            proc = subprocess.run([sys.executable, "-m", "narrator", "run", "catalogue.yaml"], cwd=together, env=env,
                                  capture_output=True, text=True)  # fmt: skip
            wall = time.monotonic() - started
            records = fake.records
        if proc.returncode != 0:
            sys.exit(f"bench catalogue failed:\n{proc.stderr}")
        report = json.loads((together / "catalogue-report.json").read_text())
        ok, limited = _statuses(records)
        bound = ok * 60.0 / RPM
        first, last = records[0].time - started, records[-1].time - started
        print(f"one catalogue run : {ok} requests, {limited} answered 429, wall {wall:.1f} s; bound requests / RPM "
              f"{bound:.1f} s; ratio {wall / bound:.3f} (first request at {first:.1f} s, last answered at "
              f"{last:.1f} s, exit {wall - last:.1f} s later)")  # fmt: skip

        with FakeSpeechServer(KEY, faults) as fake:
            jobs = _books(apart, fake.url, books, words)
            for n, job in enumerate(jobs):  # each its own cache: the processes know nothing of each other
                spec = yaml.safe_load(job.read_text())
                spec["cache"] = f"cache{n:02d}"
                job.write_text(yaml.safe_dump(spec, sort_keys=False))
            started = time.monotonic()
            quiet = {"stdout": subprocess.DEVNULL, "stderr": subprocess.DEVNULL}
            command = [sys.executable, "-m", "narrator", "run"]
            procs = [subprocess.Popen([*command, job.name], cwd=apart, env=env, **quiet) for job in jobs]
            codes = [p.wait() for p in procs]
            apart_wall = time.monotonic() - started
            records = fake.records
        ok, limited = _statuses(records)
        failed = sum(1 for c in codes if c != 0)
        print(f"{books} processes at once: {ok} requests, {limited} answered 429, wall {apart_wall:.1f} s; "
              f"ratio {apart_wall * RPM / 60.0 / max(ok, 1):.3f}; {failed} process(es) failed")  # fmt: skip
        print(
            f"catalogue report: {report['requests']} requests, rate_limited {report['rate_limited']}, "
            f"exit {report['exit_code']}"
        )


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    bench_catalogue(*(int(a) for a in sys.argv[1:3]))
