"""`make bench`: figures, and ratios against the ideal. Never asserted by tests.

python bench/run.py            # every section
python bench/run.py local      # one section: local | openai | cast | ...
"""

from __future__ import annotations

import itertools
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

from devtools.epub import NavPoint, Page, build_epub  # noqa: E402

sys.path.insert(0, str(ROOT / "bench"))
from attribution import bench_cast  # noqa: E402
from catalogue import bench_catalogue  # noqa: E402
from first import bench_first  # noqa: E402
from intake import bench_intake  # noqa: E402
from proof import bench_proof  # noqa: E402
from review import bench_review  # noqa: E402
from scale import bench_scale  # noqa: E402
from takes import bench_seams, bench_takes  # noqa: E402
from voicefloor import bench_piper  # noqa: E402

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
        for phase in ("prepare", "synthesis"):
            print(f"  {phase:<10} {t[phase]:7.1f} s  {100 * t[phase] / wall:5.1f} % of wall")
        # chapter files are made while synthesis runs (t["outputs"] spans both): what is left is the tail
        rest = wall - t["prepare"] - t["synthesis"]
        print(f"  {'after it':<10} {rest:7.1f} s  {100 * rest / wall:5.1f} % (the book's files, QA, start-up, report)")
        wall2, _, report2 = run_cli(job)
        print(f"rerun, nothing changed: {wall2:.1f} s wall, {report2['chunks']['synthesized']} chunks synthesized")
        _flac_bytes(folder / "cache")


def _flac_bytes(cache: Path) -> None:
    """What the takes would hold in a cache on object storage (remote.py stores them as FLAC)."""
    from narrator.core import ffmpeg
    from narrator.core.audio import wav_layout

    wav = flac = 0
    seconds = 0.0
    started = time.perf_counter()
    for take in sorted(cache.glob("takes/*/*.wav")):
        flac += len(ffmpeg.run(["-i", str(take), "-c:a", "flac", "-f", "flac", "pipe:1"], "compressing"))
        wav += take.stat().st_size
        seconds += wav_layout(take).duration
    spent = time.perf_counter() - started
    hours = seconds / 3600
    print(f"takes as FLAC (an s3:// cache): {flac / 1e6 / hours:.1f} MB per audio hour against {wav / 1e6 / hours:.1f} "
          f"as WAV ({flac / wav:.2f}); compressed at {seconds / spent:.0f}x real time on one core")  # fmt: skip


def _openai_book(folder: Path, chunks: int, **job: object) -> Path:
    paragraphs = [f"Paragraph {i}: the keeper climbed the stairs and lit the lamp again." for i in range(chunks - 1)]
    (folder / "story.md").write_text("# Story\n\n" + "\n\n".join(paragraphs) + "\n")
    spec = {"sources": ["story.md"], "output": {"dir": "out", "formats": ["mp3"]}, "cache": "cache", **job}
    path = folder / "job.yaml"
    path.write_text(yaml.safe_dump(spec))
    return path


def _run_against(faults: object, chunks: int, **job: object) -> tuple[dict, list]:
    import os

    from devtools.fake_openai import FakeSpeechServer

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
    from devtools.fake_openai import Faults

    n, latency, concurrency = 300, 0.4, 8
    one_per_paragraph = {"target_chars": 0}  # a request per chunk: the scheduler, not the grouping, is measured
    print(f"\n== openai provider against the loopback fake: {n} chunks, a request each ==")
    report, records = _run_against(Faults(latency=latency), n, concurrency=concurrency, chunking=one_per_paragraph)
    wall = report["timings_seconds"]["synthesis"]
    spoken = [r for r in records if r.status == 200]
    # the bound counts requests (a take may hold several chunks) with the latency each really had, the server's
    # own overhead in it
    bound = sum(r.served for r in spoken) / concurrency
    print(
        f"(a) latency {latency * 1000:.0f} ms, concurrency {concurrency}: {len(spoken)} requests, "
        f"synthesis {wall:.2f} s, bound sum(latency)/{concurrency} = {bound:.2f} s, ratio {wall / bound:.3f} "
        f"(target <= 1.05)"
    )
    rpm = 120
    report, records = _run_against(
        Faults(latency=latency, requests_per_minute=rpm),
        n,
        concurrency=concurrency,
        requests_per_minute=rpm,
        chunking=one_per_paragraph,
    )
    wall = report["timings_seconds"]["synthesis"]
    spoken = [r for r in records if r.status == 200]
    bound = max(len(spoken) / rpm * 60, sum(r.served for r in spoken) / concurrency)
    limited = sum(r.status == 429 for r in records)
    print(
        f"(b) server and job at {rpm} RPM: {len(spoken)} requests, synthesis {wall:.1f} s, bound "
        f"max(requests/RPM, sum(latency)/{concurrency}) = {bound:.1f} s, ratio {wall / bound:.3f} (target <= 1.10); "
        f"429s: {limited} of {len(records)} requests = {100 * limited / len(records):.2f} % (target < 1 %)"
    )


def _tree_rss_mb(root: int) -> tuple[float, float, float, str]:
    """Resident memory of ``root`` alone, of ``root`` with all its descendants (ffmpeg encoders included), and of
    the largest descendant, with what it is doing; from /proc."""
    parents: dict[int, int] = {}
    rss: dict[int, int] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        pid = int(stat.parent.name)
        parents[pid], rss[pid] = int(fields[1]), int(fields[21])
    tree, frontier = {root}, [root]
    while frontier:
        parent = frontier.pop()
        children = [pid for pid, ppid in parents.items() if ppid == parent]
        tree.update(children)
        frontier += children
    page = resource.getpagesize() / 2**20
    largest = max(tree - {root}, key=lambda pid: rss.get(pid, 0), default=None)
    return (rss.get(root, 0) * page, sum(rss.get(pid, 0) for pid in tree) * page,
            rss.get(largest, 0) * page if largest else 0.0, _doing(largest) if largest else "")  # fmt: skip


def _doing(pid: int) -> str:
    """ "ffmpeg aac -> mp4" and the like: what an ffmpeg child is making."""
    try:
        args = Path(f"/proc/{pid}/cmdline").read_text().split("\0")
    except OSError:
        return "?"
    codec = args[args.index("-c:a") + 1] if "-c:a" in args else "decode"
    muxer = args[len(args) - 1 - args[::-1].index("-f") + 1] if "-f" in args else "?"
    return f"{Path(args[0]).name.split('-')[0]} {codec} -> {muxer}"


def _phase_at(seconds: float, timings: dict[str, float]) -> str:
    """Which phase of a run was under way ``seconds`` after it started (start-up counted in prepare)."""
    end = 0.0
    for phase in ("prepare", "synthesis", "outputs", "qa"):
        end += timings.get(phase, 0.0)
        if seconds <= end + 1.0:  # interpreter start-up and the manifest write are not timed
            return phase
    return "report"


def _recorded_voice(seconds: float = 240.0) -> bytes:
    """A few minutes of real speech from the local voice, at the fake server's 24 kHz, looped by the fake."""
    import asyncio

    from narrator.core import ffmpeg
    from narrator.core.audio import atomic_wav
    from narrator.job.spec import VoiceSpec
    from narrator.providers.local import LocalProvider

    rng = random.Random(11)
    provider = LocalProvider(VoiceSpec())
    provider._load()
    with tempfile.TemporaryDirectory() as tmp:
        wav = Path(tmp) / "voice.wav"
        with atomic_wav(wav, 22_050) as out:
            while out.samples < seconds * 22_050:
                text = " ".join(
                    " ".join(rng.choice(VOCABULARY) for _ in range(rng.randint(5, 20))).capitalize() + "."
                    for _ in range(5)
                )
                out.write(provider._speak(text).pcm)
        asyncio.run(provider.aclose())
        return ffmpeg.decode(wav, 24_000).pcm


def bench_long(hours_list: tuple[float, ...] = (1, 10, 30)) -> None:
    """Books of many hours through the fast fake voice: does assembly stream, and how fast is the back end?"""
    print("\n== long books: assembly + mastering (podcast preset) + encoding to M4B and MP3s, fake server ==")
    print("voice: recorded speech (4 min of the local voice, looped by the fake server); tones for comparison")
    speech = _recorded_voice()
    for hours in hours_list:
        _long_book(hours, speech, "speech")
    _long_book(1, b"", "tones")


def _long_book(hours: float, voice_sample: bytes, voice: str) -> None:
    import os
    import threading

    from devtools.fake_openai import FakeSpeechServer, Faults
    from narrator.core import ffmpeg

    rng = random.Random(3)
    key = "sk-bench-key"
    with (
        tempfile.TemporaryDirectory(dir=os.environ.get("BENCH_TMP")) as tmp,
        FakeSpeechServer(key, Faults(), voice_sample=voice_sample) as server,
    ):
        folder = Path(tmp)
        chapters = max(1, round(hours))
        per_chapter_chars = int(hours * 3600 * 15 / chapters)  # the fake speaks 15 characters a second
        text = []
        for c in range(chapters):
            text.append(f"# Chapter {c + 1}")
            written = 0
            while written < per_chapter_chars:
                words = " ".join(rng.choice(VOCABULARY) for _ in range(600))
                paragraph = ". ".join(words[i : i + 120].capitalize() for i in range(0, len(words), 120)) + "."
                text.append(paragraph[:3900])
                written += len(text[-1])
        (folder / "book.md").write_text("\n\n".join(text) + "\n")
        spec = {"title": "Long Book", "sources": ["book.md"], "cache": "cache", "concurrency": 8,
                "voice": {"provider": "openai", "base_url": server.url},
                "output": {"dir": "out", "formats": ["m4b", "mp3"], "mastering": "podcast"}}  # fmt: skip
        (folder / "job.yaml").write_text(yaml.safe_dump(spec))
        env = {**os.environ, "OPENAI_API_KEY": key}
        command = ["/usr/bin/time", "-f", "%M", sys.executable, "-m", "narrator", "run", str(folder / "job.yaml")]
        proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
        tree_peak = own_peak = child_peak = 0.0
        tree_peak_at = own_peak_at = 0.0
        child_doing = ""
        sampling = threading.Event()
        began = time.monotonic()

        def sample() -> None:
            nonlocal tree_peak, own_peak, tree_peak_at, own_peak_at, child_peak, child_doing
            while not sampling.wait(0.5):
                # /usr/bin/time is the root: narrator is its only child
                children = [int(c) for c in Path(f"/proc/{proc.pid}/task/{proc.pid}/children").read_text().split()]
                if not children:
                    continue
                own, tree, child, doing = _tree_rss_mb(children[0])
                now = time.monotonic() - began
                if child > child_peak:
                    child_peak, child_doing = child, doing
                if own > own_peak:
                    own_peak, own_peak_at = own, now
                if tree > tree_peak:
                    tree_peak, tree_peak_at = tree, now

        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        _, stderr = proc.communicate()
        sampling.set()
        sampler.join()
        if proc.returncode != 0:
            sys.exit(f"long-book bench failed:\n{stderr[-2000:]}")
        peak_mb = int(stderr.strip().splitlines()[-1]) // 1024
        report = json.loads((folder / "out" / "report.json").read_text())
        manifest = json.loads((folder / "out" / "manifest.json").read_text())
        t, busy = report["timings_seconds"], report["stage_seconds"]
        audio_hours = sum(c["duration"] for c in manifest["chapters"]) / 3600

        # every file's duration against the sum of its parts (takes + pauses, from the manifest)
        def decoded_seconds(path: Path) -> float:  # streamed: a 30-hour M4B is 1.7 GB of PCM even at 8 kHz
            return sum(len(piece) for piece in ffmpeg.stream_pcm(path, 8000, block=1 << 20)) / 2 / 8000

        worst = 0.0
        for chapter, mp3 in zip(manifest["chapters"], sorted((folder / "out" / "chapters").glob("*.mp3")), strict=True):
            worst = max(worst, abs(decoded_seconds(mp3) - chapter["duration"]))
        worst = max(worst, abs(decoded_seconds(folder / "out" / "Long Book.m4b") - audio_hours * 3600))
        print(f"{voice:>6} {audio_hours:5.1f} h, {len(manifest['chunks'])} chunks, {chapters} chapters: "
              f"back end {t['outputs']:.0f} s = {t['outputs'] / audio_hours:.1f} s per audio hour (target <= 30) "
              f"[busy: assembly {busy.get('assembly', 0):.0f} s, mastering {busy.get('mastering', 0):.0f} s, "
              f"encoding {busy.get('encoding', 0):.0f} s, book {busy.get('book_encoding', 0):.0f} s]; "
              f"synthesis {t['synthesis']:.0f} s; "
              f"QA after encoding {t.get('qa', 0) / audio_hours:.1f} s/h; peak RSS {peak_mb} MB largest process; "
              f"narrator {own_peak:.0f} MB (in {_phase_at(own_peak_at, t)}), "
              f"largest child {child_peak:.0f} MB ({child_doing}), "
              f"whole tree {tree_peak:.0f} MB (in {_phase_at(tree_peak_at, t)}) (target < 1024); "
              f"worst file duration error {worst * 1000:.0f} ms (target < 100)", flush=True)  # fmt: skip


def bench_subtitles(paragraphs: int = 40) -> None:
    """Cue starts inside a take, as assembly places them (assemble.sentence_onsets), and as plain proportional
    timing would, against the real sentence starts the local voice reports."""
    import asyncio

    import numpy as np

    from narrator.build.assemble import quiet_frames, sentence_onsets, trim
    from narrator.core.audio import Audio, frame_energy
    from narrator.job.spec import VoiceSpec
    from narrator.providers.local import LocalProvider
    from narrator.text.chunker import spoken_sentences

    print("\n== subtitle timing: cue starts against the local voice's real sentence starts ==")
    rng = random.Random(5)
    provider = LocalProvider(VoiceSpec())
    provider._load()
    errors: dict[tuple[str, str], list[float]] = {}
    for _ in range(paragraphs):
        text = " ".join(
            " ".join(rng.choice(VOCABULARY) for _ in range(rng.randint(5, 20))).capitalize() + "."
            for _ in range(rng.randint(2, 6))
        )
        starts: list[int] = []
        audio: Audio = provider._speak(text, starts)
        parts = spoken_sentences(text)
        if len(parts) != len(starts):  # piper split the text differently: not comparable
            continue
        body = trim(audio, audio.rate)  # as assembly sees the take
        lead = audio.pcm.find(body) // 2
        energy = frame_energy(body, audio.rate // 100)
        # the first sentence starts the take; the others where piper began them, and where their sound begins
        # (piper opens each sentence with a little silence of its own)
        blocks = [(start - lead) / audio.rate for start in starts[1:]]
        heard = ~quiet_frames(energy)
        sounds = [(round(t * 100) + int(np.argmax(heard[round(t * 100) :]))) * 0.01 for t in blocks]
        lengths = [len(p) for p in parts]
        duration = len(body) / 2 / audio.rate
        proportional = [duration * done / sum(lengths) for done in itertools.accumulate(lengths[:-1])]
        placed = sentence_onsets(lengths, energy, 0.01)
        for method, found in (("placed at pauses", placed), ("proportional", proportional)):
            for truth, reference in (("first sound", sounds), ("piper's start", blocks)):
                errors.setdefault((method, truth), [])
                errors[method, truth] += [abs(a - b) * 1000 for a, b in zip(found, reference, strict=True)]
    asyncio.run(provider.aclose())
    for (method, truth), values in errors.items():
        ms = np.array(values)
        print(f"{method:>16} vs {truth:<13}: {ms.size} sentence starts, mean error {ms.mean():.0f} ms, "
              f"median {np.median(ms):.0f} ms, 95th percentile {np.percentile(ms, 95):.0f} ms, "
              f"worst {ms.max():.0f} ms")  # fmt: skip


SECTIONS = {
    "local": bench_local,
    "piper": bench_piper,
    "subtitles": bench_subtitles,
    "seams": bench_seams,
    "openai": bench_openai,
    "takes": bench_takes,
    "intake": bench_intake,
    "review": bench_review,
    "catalogue": bench_catalogue,
    "scale": bench_scale,
    "proof": bench_proof,
    "long": bench_long,
    "first": bench_first,
    "cast": bench_cast,
}

if __name__ == "__main__":
    # python bench/run.py [section ...]; `long` takes hours after it: python bench/run.py long 1 10
    args = sys.argv[1:] or [name for name in SECTIONS if name != "long"]  # long: hours of audio, on request
    for i, name in enumerate(args):
        if name not in SECTIONS:
            continue
        if name == "long":
            hours = tuple(float(a) for a in args[i + 1 :] if a.replace(".", "", 1).isdigit())
            bench_long(hours or (1, 10, 30))
        else:
            SECTIONS[name]()
