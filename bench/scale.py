"""Beyond one machine (issue #15): a catalogue through the fake server (recorded speech) as one process against
the same catalogue on a two-node local Ray cluster (a head of 1 CPU, a worker of 2: on this one 2-core machine),
takes a second and books a minute each way; then what a cache on object storage (moto's S3 on loopback) holds per
audio hour, and what one book costs in requests, audio and CPU, the figures docs/scale.md sizes a catalogue by."""

from __future__ import annotations

import json
import logging
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

KEY = "sk-bench-key"
OVERHEAD, PER_CHAR = 0.3, 0.0001


def _catalogue(folder: Path, url: str, books: int, words: int, cache: str = "cache") -> Path:
    from devtools.novel import generate_novel

    for n in range(books):
        (folder / f"book{n}.md").write_text(generate_novel(words, seed=200 + n, chapter_words=2_000), "utf-8")
        spec = {"sources": [f"book{n}.md"], "title": f"Book {n + 1}",
                "voice": {"provider": "openai", "base_url": url},
                "output": {"dir": f"out{n}", "formats": ["m4b", "mp3"]}, "cache": cache, "concurrency": 8}  # fmt: skip
        (folder / f"job{n}.yaml").write_text(yaml.safe_dump(spec, sort_keys=False), "utf-8")
    (folder / "catalogue.yaml").write_text(yaml.safe_dump({"jobs": ["job*.yaml"]}), "utf-8")
    return folder / "catalogue.yaml"


def _run(folder: Path, *extra: str, env: dict[str, str] | None = None) -> float:
    started = time.monotonic()
    command = [sys.executable, "-m", "narrator", "run", "catalogue.yaml", *extra]
    env = {**os.environ, **(env or {}), "OPENAI_API_KEY": KEY}
    proc = subprocess.run(command, cwd=folder, env=env, capture_output=True, text=True)
    if proc.returncode != 0:
        sys.exit(f"bench scale failed:\n{proc.stderr}")
    return time.monotonic() - started


def bench_scale(books: int = 6, words: int = 20_000) -> None:
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from run import _recorded_voice

    from devtools.fake_openai import FakeSpeechServer, Faults
    from devtools.raycluster import LocalCluster
    from narrator.text.tokens import count_tokens

    count_tokens("warm")
    voice = _recorded_voice()
    faults = Faults(latency=OVERHEAD, latency_per_char=PER_CHAR)
    print(f"\n== scale-out: {books} generated books of {words} words (m4b + mp3), the fake with recorded speech at "
          f"{OVERHEAD * 1000:.0f} ms + {PER_CHAR * 1000:.1f} ms/char a request, concurrency 8 a book, "
          f"{os.cpu_count()} cores ==")  # fmt: skip
    with tempfile.TemporaryDirectory() as tmp:
        walls = {}
        for how in ("one process", "ray, two nodes"):
            folder = Path(tmp) / how.replace(" ", "-").replace(",", "")
            folder.mkdir()
            with FakeSpeechServer(KEY, faults, voice_sample=voice) as fake:
                _catalogue(folder, fake.url, books, words)
                if how == "one process":
                    walls[how] = _run(folder)
                else:
                    with LocalCluster() as cluster:
                        walls[how] = _run(folder, "--ray", cluster.address)
                takes = len(fake.records)
            report = json.loads((folder / "catalogue-report.json").read_text())
            print(f"{how:>15}: {takes} takes in {walls[how]:.1f} s: {takes / walls[how]:.1f} takes/s, "
                  f"{books * 60 / walls[how]:.2f} books/min (executor {report['executor']})")  # fmt: skip
        ratio = walls["ray, two nodes"] / walls["one process"]
        print(
            f"ray / one process: {ratio:.2f} (both nodes share this machine's cores: the cluster's overhead, "
            "not its reach)"
        )
        one = Path(tmp) / "one-process"
        audio = sum(c["duration"] for c in json.loads((one / "out0" / "manifest.json").read_text())["chapters"])
        first = json.loads((one / "out0" / "report.json").read_text())
        print(f"one book: {first['requests']} requests, {audio / 3600:.2f} h of audio, "
              f"{first['timings_seconds'].get('cpu', 0):.0f} CPU s in narrator and its ffmpegs "
              f"({first['timings_seconds'].get('cpu', 0) / (audio / 3600):.0f} CPU s per audio hour)")  # fmt: skip
        _s3_bytes(Path(tmp), voice, words)


def _s3_bytes(tmp: Path, voice: bytes, words: int) -> None:
    """One book with ``cache: s3://...`` on moto's server: bytes stored per audio hour (FLAC of recorded speech)."""
    import boto3
    from moto.server import ThreadedMotoServer

    from devtools.fake_openai import FakeSpeechServer, Faults
    from devtools.raycluster import _free_port

    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # moto's server logs every request
    port = _free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    env = {"AWS_ACCESS_KEY_ID": "bench", "AWS_SECRET_ACCESS_KEY": "bench", "AWS_DEFAULT_REGION": "us-east-1",
           "AWS_ENDPOINT_URL": f"http://127.0.0.1:{port}"}  # fmt: skip
    try:
        client = boto3.client("s3", endpoint_url=env["AWS_ENDPOINT_URL"], aws_access_key_id="bench",
                              aws_secret_access_key="bench", region_name="us-east-1")  # fmt: skip
        client.create_bucket(Bucket="bench")
        folder = tmp / "s3"
        folder.mkdir()
        with FakeSpeechServer(KEY, Faults(), voice_sample=voice) as fake:
            _catalogue(folder, fake.url, 1, words, cache="s3://bench/takes")
            wall = _run(folder, env=env)
        stored = sum(o["Size"] for o in client.list_objects_v2(Bucket="bench").get("Contents", []))
        manifest = json.loads((folder / "out0" / "manifest.json").read_text())
        hours = sum(c["duration"] for c in manifest["chapters"]) / 3600
        local = sum(p.stat().st_size for p in (folder / "out0" / ".narrator" / "cache").rglob("*.wav"))
        print(f"s3:// cache (moto on loopback): {stored / 1e6 / hours:.1f} MB per audio hour as FLAC against "
              f"{local / 1e6 / hours:.1f} MB as WAV ({stored / local:.2f}); the book in {wall:.1f} s")  # fmt: skip
    finally:
        server.stop()
        shutil.rmtree(tmp / "s3", ignore_errors=True)


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    bench_scale(*(int(a) for a in sys.argv[1:3]))
