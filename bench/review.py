"""The editor's page (issue #13) on a big book: a generated novel read one paragraph a take (2 000 and more) through
the loopback fake, then `narrator review`'s server timed as the page uses it: the page with its first chapter, a
chapter's takes, the book's progress, and the first bytes of a take's audio (a ranged request, as <audio> makes).
Wall times of real HTTP requests on loopback; medians of 5."""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx
import yaml

KEY = "sk-bench-key"


def _timed(client: httpx.Client, url: str, **kwargs: object) -> tuple[float, httpx.Response]:
    times, answer = [], None
    for _ in range(5):
        started = time.perf_counter()
        answer = client.get(url, **kwargs)  # type: ignore[arg-type]
        times.append(time.perf_counter() - started)
        answer.raise_for_status()
    assert answer is not None
    return statistics.median(times) * 1000, answer


def bench_review(words: int = 60_000) -> None:
    from devtools.fake_openai import FakeSpeechServer
    from devtools.novel import generate_novel
    from narrator.job.spec import load_job
    from narrator.review.server import serve, url

    with tempfile.TemporaryDirectory() as tmp, FakeSpeechServer(KEY) as fake:
        folder = Path(tmp)
        (folder / "novel.md").write_text(generate_novel(words, seed=2), encoding="utf-8")
        spec = {"sources": ["novel.md"], "voice": {"provider": "openai", "base_url": fake.url},
                "output": {"dir": "out", "formats": ["srt"]}, "cache": "cache", "concurrency": 8,
                "chunking": {"target_chars": 0}}  # one take a paragraph: as many takes as can be  # fmt: skip
        job = folder / "job.yaml"
        job.write_text(yaml.safe_dump(spec))
        proc = subprocess.run([sys.executable, "-m", "narrator", "run", str(job)], capture_output=True, text=True,
                              env={**os.environ, "OPENAI_API_KEY": KEY})  # fmt: skip
        if proc.returncode != 0:
            sys.exit(f"bench run failed:\n{proc.stderr}")
        started = time.perf_counter()
        server = serve(load_job(job))
        ready = time.perf_counter() - started
        threading.Thread(target=server.serve_forever, daemon=True).start()
        script = server.desk.script
        sizes = {i: len(t) for i, t in script.takes_by_chapter.items()}
        biggest = max(sizes, key=lambda i: sizes[i])
        with httpx.Client() as client:
            token = server.desk.token
            base = url(server).split("/?")[0]
            page, answer = _timed(client, url(server))
            chapter, _ = _timed(client, f"{base}/api/chapter/{biggest}?token={token}")
            book, _ = _timed(client, f"{base}/api/book?token={token}")
            take = script.takes_by_chapter[biggest][len(script.takes_by_chapter[biggest]) // 2]
            audio, _ = _timed(client, f"{base}/audio/{take.id}/0?token={token}", headers={"Range": "bytes=0-65535"})
        starts = _browser_starts(url(server))
        server.shutdown()
    print(f"\n== the review page: a {words}-word novel, {len(script.takes)} takes in {len(sizes)} chapters ==")
    print(f"server ready (book read, script made) {ready:.2f} s; page with the first chapter {page:.0f} ms "
          f"({len(answer.content) // 1024} KB); the biggest chapter's takes ({sizes[biggest]}) {chapter:.0f} ms; "
          f"the book's progress {book:.0f} ms; a take's first 64 KB of audio {audio:.1f} ms")  # fmt: skip
    if starts:
        print(f"in headless Chromium: the page loaded and showing its takes in {starts[0]:.0f} ms; from a click on "
              f"a take's play button to the audio playing: median {statistics.median(starts[1:]):.0f} ms, worst "
              f"{max(starts[1:]):.0f} ms over {len(starts) - 1} takes")  # fmt: skip


def _browser_starts(address: str) -> list[float]:
    """[ms to load the page and show its takes, then ms from click to 'playing' for a few takes]; [] without
    Debian's chromium."""
    import shutil

    chromium = shutil.which("chromium")
    if chromium is None:
        print("(no chromium: the in-browser figures are skipped)")
        return []
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium,
                                             args=["--autoplay-policy=no-user-gesture-required"])  # fmt: skip
        page = browser.new_page()
        started = time.perf_counter()
        page.goto(address)
        page.wait_for_selector("#takes .take .meta")
        times = [(time.perf_counter() - started) * 1000]
        for i in range(1, 11):
            page.evaluate("() => { window.began = 0; document.getElementById('player').onplaying = () => "
                          "{ window.playing = performance.now() - window.began; }; }")  # fmt: skip
            click = f"document.querySelectorAll('#takes .take button[data-act=play]')[{i}].click();"
            page.evaluate(f"() => {{ window.playing = null; window.began = performance.now(); {click} }}")
            page.wait_for_function("() => window.playing !== null")
            times.append(page.evaluate("window.playing"))
        browser.close()
    return times


if __name__ == "__main__":
    bench_review()
