"""When a listener can start: a generated novel of 60 chapters through the loopback fake, and the time its first
chapter's files are all made (report.json timings_seconds.first_chapter) against the whole run's."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import yaml

from devtools.fake_openai import FakeSpeechServer, Faults
from devtools.novel import generate_novel


def bench_first(chapters: int = 60, words: int = 30_000, concurrency: int = 8) -> None:
    print(f"\n== the first chapter early: a {words}-word novel of {chapters} chapters, fake at 0.3 s + 0.1 ms a "
          f"character, concurrency {concurrency}, mp3 per chapter and the m4b ==")  # fmt: skip
    for mastering in ("none", "podcast"):  # with a preset, QA: each chapter file's as it is made, the M4B's last
        _first(chapters, words, concurrency, mastering)


def _first(chapters: int, words: int, concurrency: int, mastering: str) -> None:
    key = "sk-bench-key"
    with (
        tempfile.TemporaryDirectory() as tmp,
        FakeSpeechServer(key, Faults(latency=0.3, latency_per_char=1e-4)) as fake,
    ):
        folder = Path(tmp)
        (folder / "novel.md").write_text(generate_novel(words, seed=3, chapter_words=words // chapters))
        spec = {"sources": [{"path": "novel.md", "split_at": 1}], "cache": "cache", "concurrency": concurrency,
                "voice": {"provider": "openai", "base_url": fake.url},
                "output": {"dir": "out", "formats": ["mp3", "m4b"], "mastering": mastering}}  # fmt: skip
        (folder / "job.yaml").write_text(yaml.safe_dump(spec))
        env = {**os.environ, "OPENAI_API_KEY": key}
        run = subprocess.run([sys.executable, "-m", "narrator", "run", str(folder / "job.yaml")], capture_output=True,
                             text=True, env=env)  # fmt: skip
        if run.returncode != 0:
            sys.exit(f"bench run failed:\n{run.stderr}")
        report = json.loads((folder / "out" / "report.json").read_text())
    t = report["timings_seconds"]
    print(f"mastering {mastering}: {len(report.get('chapters', [])) or chapters} chapters; first chapter's files at "
          f"{t['first_chapter']:.1f} s of {t['total']:.1f} s ({t['first_chapter'] / t['total']:.1%} of the run; "
          f"target <= 15%); synthesis {t['synthesis']:.1f} s; QA left at the end {t.get('qa', 0):.1f} s")  # fmt: skip
