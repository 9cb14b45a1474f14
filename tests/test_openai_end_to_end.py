"""The real CLI against the loopback fake server, over real sockets, with faults injected."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest

from devtools.fake_openai import FakeSpeechServer, Faults
from narrator.core import ffmpeg
from tests.books import sentence
from tests.conftest import run_cli, write_job

pytestmark = pytest.mark.slow  # each over half a second: `pytest -m 'not slow'` leaves them out

KEY = "sk-test-0123456789abcdefghijklmnop"


def story(folder: Path, paragraphs: int) -> list[str]:
    texts = [f"Paragraph {i}. {sentence(i, 8)} {sentence(i + 50, 7)}" for i in range(paragraphs)]
    (folder / "story.md").write_text("# Story\n\n" + "\n\n".join(texts) + "\n", encoding="utf-8")
    return ["Story", *texts]


def openai_job(folder: Path, server: FakeSpeechServer, **extra) -> Path:
    """One request per paragraph unless ``chunking`` says otherwise: these tests count requests and inputs against
    paragraphs (faults, limits, resumption); grouped takes have their own tests (test_takes.py)."""
    voice = {"provider": "openai", "base_url": server.url, **extra.pop("voice", {})}
    spec = {"sources": ["story.md"], "voice": voice, "output": {"dir": "out", "formats": ["mp3"]},
            "cache": "cache", "concurrency": 4, "retry": {"attempts": 8, "max_seconds": 120},
            "chunking": {"target_chars": 0}, **extra}  # fmt: skip
    return write_job(folder, spec)


def run(job: Path, key: str = KEY):
    return run_cli("run", str(job), env={"OPENAI_API_KEY": key})


def report(folder: Path) -> dict:
    return json.loads((folder / "out" / "report.json").read_text())


def manifest(folder: Path) -> dict:
    return json.loads((folder / "out" / "manifest.json").read_text())


def successes(server: FakeSpeechServer) -> Counter[str]:
    return Counter(r.input for r in server.records if r.status == 200 and r.fault is None)


def test_faulty_server_still_gives_every_chunk_once_and_in_order(tmp_path):
    texts = story(tmp_path, 120)
    faults = Faults(error_rate=0.05, cut_rate=0.02, reset_rate=0.01, seed=11)
    with FakeSpeechServer(KEY, faults) as server:
        result = run(openai_job(tmp_path, server))
        records = server.records
    assert result.returncode == 0, result.stderr
    kinds = Counter(r.fault for r in records)
    assert kinds["server"] and kinds["cut"] and kinds["reset"], kinds  # every fault really happened
    # each chunk was synthesized exactly once (no duplicate work), and in the book in reading order
    assert sorted(successes(server).values()) == [1] * len(texts)
    chunks = manifest(tmp_path)["chunks"]
    assert [c["text"] for c in chunks] == texts
    assert all(c["status"] == "synthesized" for c in chunks)
    rep = report(tmp_path)
    assert rep["retries"]["server"] >= kinds["server"] and rep["retries"]["bad_audio"] >= kinds["cut"]
    assert rep["retries"]["network"] >= kinds["reset"] and rep["requests"] == len(records)
    # no cut body reached the book: every take is as long as the fake makes whole answers
    for c in chunks:
        assert c["duration"] >= 0.8 * len(c["text"]) / 15 - 0.3, c
    mp3 = tmp_path / "out" / "chapters" / "01 Story.mp3"
    measured = ffmpeg.decode(mp3, 24_000).duration
    assert abs(measured - manifest(tmp_path)["chapters"][0]["duration"]) < 0.05


def test_quota_stops_the_run_and_the_rerun_asks_only_for_the_rest(tmp_path):
    texts = story(tmp_path, 30)
    with FakeSpeechServer(KEY, Faults(quota_after=10)) as server:
        job = openai_job(tmp_path, server)
        result = run(job)
        records = server.records
    assert result.returncode == 3, result.stderr
    assert "out of quota" in result.stderr and "rerun" in result.stderr
    quota_hits = Counter(r.input for r in records if r.fault == "quota")
    assert quota_hits and max(quota_hits.values()) == 1  # the quota error itself is never retried
    # new requests stop at once: only requests already in flight can still meet the quota, one per worker
    assert sum(quota_hits.values()) <= 4
    done = report(tmp_path)
    assert done["exit_code"] == 3 and done["chunks"]["synthesized"] >= 10
    finished = done["chunks"]["synthesized"]
    assert {c["status"] for c in manifest(tmp_path)["chunks"]} <= {"synthesized", "failed", "pending"}

    with FakeSpeechServer(KEY) as healthy:  # a new server, on another port: the cache still applies
        job = openai_job(tmp_path, healthy)
        result = run(job)
        second = healthy.records
    assert result.returncode == 0, result.stderr
    assert len(second) == len(texts) - finished
    assert not set(r.input for r in second) & set(successes(server))


def test_retry_after_is_honoured_by_every_worker(tmp_path):
    story(tmp_path, 40)
    with FakeSpeechServer(KEY, Faults(rate_limit_window=(8, 3.0), latency=0.05)) as server:
        result = run(openai_job(tmp_path, server))
        records = server.records
    assert result.returncode == 0, result.stderr
    first_429 = min(r.time for r in records if r.status == 429)
    during = [r for r in records if first_429 + 0.5 < r.time < first_429 + 2.95]
    assert during == [], f"{len(during)} requests arrived while every worker should have been waiting"
    assert sum(r.status == 429 for r in records) <= 4  # at most the requests already on their way
    assert report(tmp_path)["rate_limited"] >= 1


def test_bad_key_stops_before_a_second_request_and_never_leaks(tmp_path):
    story(tmp_path, 20)
    wrong = "sk-wrong-9999999999999999999999999999"
    with FakeSpeechServer(KEY) as server:
        result = run(openai_job(tmp_path, server), key=wrong)
        records = server.records
    assert result.returncode == 3
    assert len(records) == 1 and records[0].status == 401
    assert "refused the API key" in result.stderr and "OPENAI_API_KEY" in result.stderr
    everything = result.stdout + result.stderr
    everything += "".join(p.read_text() for p in (tmp_path / "out").rglob("*.json"))
    assert wrong not in everything and wrong[-12:] not in everything


def test_missing_key_is_one_line_before_any_work(tmp_path):
    story(tmp_path, 3)
    with FakeSpeechServer(KEY) as server:
        result = run_cli("run", str(openai_job(tmp_path, server, voice={"api_key_env": "NARRATOR_TEST_KEY"})))
        assert server.records == []
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        f"error: {tmp_path / 'job.yaml'}: voice.api_key_env: the environment variable NARRATOR_TEST_KEY is not set; "
        "it must hold the API key"
    ]


@pytest.mark.parametrize("response_format", ["wav", "mp3"])
def test_wav_and_mp3_bodies(tmp_path, response_format):
    story(tmp_path, 4)
    with FakeSpeechServer(KEY) as server:
        result = run(openai_job(tmp_path, server, voice={"response_format": response_format}))
    assert result.returncode == 0, result.stderr
    for c in manifest(tmp_path)["chunks"]:
        # the fake speaks ~15 characters a second; a misread 0xFFFFFFFF header would give nonsense here
        assert abs(c["duration"] - len(c["text"]) / 15) < 0.35 * len(c["text"]) / 15 + 0.3, c


def test_instructions_count_toward_the_token_limit(tmp_path):
    # dense text: the token limit binds before the character limit; the fake rejects any request over
    # 2000 tokens with the instructions counted
    dense = "".join(chr(0x4E00 + (i * 37) % 20000) for i in range(3000))
    (tmp_path / "story.md").write_text(f"# 密\n\n{dense}\n", encoding="utf-8")
    instructions = "Read slowly and warmly, with care for every syllable. " * 30
    with FakeSpeechServer(KEY) as server:
        result = run(openai_job(tmp_path, server, voice={"instructions": instructions}))
        statuses = Counter(r.status for r in server.records)
    assert result.returncode == 0, result.stderr
    assert statuses == Counter({200: statuses[200]}) and statuses[200] >= 3
    assert all(c["tokens"] <= 2000 - 300 for c in manifest(tmp_path)["chunks"])


def test_unknown_voice_fails_on_openai_but_warns_on_a_relay(tmp_path):
    story(tmp_path, 2)
    job = write_job(tmp_path, {"sources": ["story.md"], "voice": {"provider": "openai", "voice": "bob"},
                               "output": {"dir": "out"}})  # fmt: skip
    result = run_cli("validate", str(job), env={"OPENAI_API_KEY": KEY})
    assert result.returncode == 2 and "has no voice 'bob'" in result.stderr
    relay = write_job(tmp_path, {"sources": ["story.md"], "voice": {"provider": "openai", "voice": "bob",
                      "base_url": "http://127.0.0.1:9/v1"}, "output": {"dir": "out"}}, "relay.yaml")  # fmt: skip
    result = run_cli("validate", str(relay), env={"OPENAI_API_KEY": KEY})
    assert result.returncode == 0 and "has no voice 'bob'" in result.stderr


def test_plan_counts_cost_and_time_without_network(tmp_path):
    texts = story(tmp_path, 30)
    with FakeSpeechServer(KEY, Faults(quota_after=12)) as server:
        job = openai_job(tmp_path, server, requests_per_minute=60)
        run(job)
        plan_result = run_cli("plan", "--json", str(job), env={"OPENAI_API_KEY": KEY})
        requests_before = len(server.records)
        human = run_cli("plan", str(job), env={"OPENAI_API_KEY": KEY})
        assert len(server.records) == requests_before  # planning sends nothing
    assert plan_result.returncode == 0, plan_result.stderr
    plan = json.loads(plan_result.stdout)
    total = plan["total"]
    finished = report(tmp_path)["chunks"]["synthesized"]
    assert total["chunks"] == len(texts) and total["cached"] == finished
    assert total["requests_to_send"] == len(texts) - finished
    assert total["characters"] == sum(len(t) for t in texts)
    # gpt-4o-mini-tts: about $0.886 per audio hour plus input tokens
    hours = total["audio_seconds"] / 3600
    assert total["cost_usd"] == pytest.approx(hours * 0.8856 + total["tokens"] * 0.6e-6, rel=0.01)
    assert total["time_bound_by"] == "requests_per_minute"
    assert total["time_seconds"] == pytest.approx(total["requests_to_send"] / 60 * 60)
    assert human.returncode == 0 and "to do:" in human.stdout


def test_budget_cap_refuses_to_start(tmp_path):
    story(tmp_path, 10)
    with FakeSpeechServer(KEY) as server:
        result = run(openai_job(tmp_path, server, budget_usd=0.0001))
        assert server.records == []
    assert result.returncode == 4 and "over the budget" in result.stderr  # 4: a budget refusal, not a typo
    refused = report(tmp_path)  # CI reads why: the report is written on this exit too
    assert refused["exit_code"] == 4 and "over the budget" in refused["message"] and not refused["outputs_current"]
    assert refused["requests"] == 0 and refused["chunks"]["pending"] == 11


def _encoders(pid: int, folder: Path) -> list[int]:
    """ffmpeg processes of ``pid`` at work on the book (not the version check run when ffmpeg is found)."""
    children: list[str] = []
    for task in Path(f"/proc/{pid}/task").glob("*/children"):  # each thread's own children
        with contextlib.suppress(OSError):
            children += task.read_text().split()
    found = []
    for child in children:
        with contextlib.suppress(OSError):
            command = Path(f"/proc/{child}/cmdline").read_text()
            if "ffmpeg" in command and (str(folder) in command or "s16le" in command):
                found.append(int(child))
    return found


def _alive(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def test_sigterm_while_encoding_stops_ffmpeg_too_and_the_rerun_finishes(tmp_path):
    story(tmp_path, 120)
    with FakeSpeechServer(KEY, Faults()) as server:
        job = openai_job(tmp_path, server, output={"dir": "out", "formats": ["m4b", "mp3"], "mastering": "podcast"})
        env = {**os.environ, "OPENAI_API_KEY": KEY}
        proc = subprocess.Popen([sys.executable, "-m", "narrator", "run", str(job)], env=env,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)  # fmt: skip
        encoders: list[int] = []
        deadline = time.monotonic() + 120
        while not encoders and proc.poll() is None and time.monotonic() < deadline:
            encoders = _encoders(proc.pid, tmp_path)
            time.sleep(0.01)
        assert encoders, "the run must be stopped while ffmpeg is running"
        proc.send_signal(signal.SIGTERM)  # to narrator alone, as a CI job's timeout does
        _, stderr = proc.communicate(timeout=120)
        assert proc.returncode == 128 + signal.SIGTERM, stderr
        assert "Terminated: finished chunks are kept" in stderr and "Traceback" not in stderr
        assert not any(_alive(pid) for pid in encoders)
        assert not (tmp_path / "out" / "Story.m4b").exists()  # nothing half-written took a final name
        assert stderr.startswith("stopping...")  # said at once
        stopped = report(tmp_path)  # CI is told: not the previous run's exit code, this one's
        assert stopped["exit_code"] == 143 and "SIGTERM" in stopped["message"] and not stopped["outputs_current"]
        # every take was made by this run before encoding began: synthesized, not reused
        assert stopped["chunks"]["synthesized"] == 121 and stopped["chunks"]["reused"] == 0, stopped["chunks"]

        result = run(job)
        assert result.returncode == 0, result.stderr
        assert report(tmp_path)["chunks"]["synthesized"] == 0  # every take survived the stop
        book = ffmpeg.decode(tmp_path / "out" / "Story.m4b", 8_000).duration
        assert abs(book - sum(c["duration"] for c in manifest(tmp_path)["chapters"])) < 0.1


def test_a_source_reads_with_its_own_voice_instructions_and_speed(tmp_path):
    """sources[].voice: the letters appendix in another voice, more quietly and slower; the rest in the job's.
    Its takes are its own in the cache (a changed source voice asks again for that source only)."""
    texts = story(tmp_path, 3)
    (tmp_path / "letters.md").write_text(f"# Letters\n\n{sentence(70)}\n\n{sentence(71)}\n", encoding="utf-8")
    own = {"voice": "onyx", "instructions": "Read quietly, as a letter.", "speed": 0.8}
    sources = ["story.md", {"path": "letters.md", "voice": own}]
    with FakeSpeechServer(KEY) as server:
        job = openai_job(tmp_path, server, sources=sources, voice={"voice": "coral"})
        result = run(job)
        asked = {r.input: (r.voice, r.instructions, r.speed) for r in server.records if r.status == 200}
        assert result.returncode == 0, result.stderr
        assert {asked[t] for t in texts} == {("coral", "", 1.0)}
        assert {asked[t] for t in ("Letters", sentence(70), sentence(71))} == {("onyx", own["instructions"], 0.8)}
        own["speed"] = 0.9
        job = openai_job(tmp_path, server, sources=sources, voice={"voice": "coral"})
        before = len(server.records)
        assert run(job).returncode == 0
        assert sorted(r.input for r in server.records[before:]) == sorted(["Letters", sentence(70), sentence(71)])


@pytest.mark.parametrize(
    "voice, message",
    [
        ({"model": "tts-1"}, "sources[1].voice.model: a source may set only voice, instructions, speed"),
        ({"speed": 9}, "sources[1].voice.speed: must be between 0.25 and 4, got 9"),
        ({"speed": "fast"}, "sources[1].voice.speed: must be a number, got text"),
        ("onyx", "sources[1].voice: must be a mapping, got text"),
    ],
)
def test_a_source_voice_is_checked_like_the_jobs(tmp_path, voice, message):
    story(tmp_path, 1)
    (tmp_path / "letters.md").write_text("# Letters\n\nDear reader.\n", encoding="utf-8")
    with FakeSpeechServer(KEY) as server:
        job = openai_job(tmp_path, server, sources=["story.md", {"path": "letters.md", "voice": voice}])
    result = run_cli("validate", str(job))
    assert result.returncode == 2 and message in result.stderr and "Traceback" not in result.stderr, result.stderr
