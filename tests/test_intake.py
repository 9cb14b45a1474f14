"""Takes received in intake processes of their own (providers/intake.py), against the loopback fake over real
sockets: the same takes as the event loop receives, through faults, a bad key and a child that dies."""

from __future__ import annotations

import asyncio
from collections import Counter
from pathlib import Path

import pytest

from devtools.fake_openai import FakeSpeechServer, Faults
from narrator.core import errors
from narrator.core.audio import read_wav
from narrator.providers.openai import OpenAIProvider, Settings
from narrator.synthesis.cache import TakeCache
from tests.test_openai_end_to_end import KEY, manifest, openai_job, report, run, story, successes

pytestmark = pytest.mark.slow


def takes_of(cache: Path) -> dict[str, bytes]:
    return {wav.stem: read_wav(wav).pcm for wav in sorted(cache.glob("takes/*/*.wav"))}


def test_takes_received_in_processes_are_the_takes_the_event_loop_receives(tmp_path):
    faults = Faults(error_rate=0.05, cut_rate=0.03, reset_rate=0.02, seed=9)
    folders = {processes: tmp_path / f"p{processes}" for processes in (0, 2)}
    for processes, folder in folders.items():
        folder.mkdir()
        texts = story(folder, 60)
        with FakeSpeechServer(KEY, faults) as server:
            result = run(openai_job(folder, server, voice={"intake_processes": processes}))
            records = server.records
        assert result.returncode == 0, result.stderr
        kinds = Counter(r.fault for r in records)
        assert kinds["server"] and kinds["cut"] and kinds["reset"], kinds  # every fault happened to these takes
        assert sorted(successes(server).values()) == [1] * len(texts)  # each take made once: no lost answers
        assert [c["text"] for c in manifest(folder)["chunks"]] == texts
        rep = report(folder)
        assert rep["retries"]["bad_audio"] >= kinds["cut"] and rep["retries"]["network"] >= kinds["reset"]
        assert rep["responses_by_status"]["200"] == sum(r.status == 200 for r in records)  # every event reached the run
        assert not list((folder / "cache").glob("takes/*/.*")), "a temporary file was left in the cache"
    by_loop, by_processes = (takes_of(folder / "cache") for folder in folders.values())
    assert by_processes == by_loop and len(by_loop) == 61  # same keys (the setting is not in them), same samples
    sidecars = sorted((folders[2] / "cache").glob("takes/*/*.sha256"))
    assert len(sidecars) == 61  # the hash each child computed as the take came in, beside its take


def test_a_refused_key_in_an_intake_process_stops_the_run_with_its_class(tmp_path):
    story(tmp_path, 12)
    with FakeSpeechServer(KEY) as server:
        result = run(openai_job(tmp_path, server, voice={"intake_processes": 2}), key="sk-wrong-key-0123456789")
        records = server.records
    assert result.returncode == errors.EXIT_FATAL_PROVIDER, result.stderr
    assert "401" in result.stderr and "sk-wrong-key-0123456789" not in result.stderr
    assert "Traceback" not in result.stderr
    assert len(records) == 1  # the canary's one request, as in the event loop


def test_a_request_whose_intake_process_dies_fails_to_be_retried_and_the_next_starts_a_new_one(tmp_path, monkeypatch):
    class Heard:
        def __init__(self) -> None:
            self.statuses: list[str] = []

        def accepted(self) -> None:
            pass

        def slow_down(self, seconds: float, cause: str) -> None:
            pass

        def response(self, status: str) -> None:
            self.statuses.append(status)

    async def scenario(url: str) -> tuple[errors.ProviderError | None, int, int]:
        provider = OpenAIProvider(Settings(provider="openai", base_url=url, intake_processes=1), concurrency=2)
        cache = TakeCache(tmp_path / "cache")
        text = "The keeper climbed the stair and lit the lamp before the storm came in from the sea."
        first = cache.pending("a" * 64)
        asking = asyncio.create_task(provider.synthesize(text, first, Heard()))
        while provider._intake is None or provider._intake.children[0] is None:
            await asyncio.sleep(0.01)
        child = provider._intake.children[0]
        while not list(cache.root.glob("takes/aa/.*.tmp")):  # the child is receiving the answer (over 1 s)
            await asyncio.sleep(0.01)
        child.process.kill()
        failed = None
        try:
            await asyncio.wait_for(asking, 10)
        except errors.ProviderError as exc:
            failed = exc
        first.discard()
        second, heard = cache.pending("b" * 64), Heard()
        await provider.synthesize(text, second, heard)
        second.commit()
        replaced = provider._intake.children[0]
        await provider.aclose()
        assert replaced is not None and replaced is not child and heard.statuses == ["200"]
        return failed, second.samples, child.process.returncode or 0

    monkeypatch.setenv("OPENAI_API_KEY", KEY)
    with FakeSpeechServer(KEY, Faults(latency=1.0)) as server:
        failed, samples, code = asyncio.run(scenario(server.url))
    assert isinstance(failed, errors.NetworkError) and failed.retryable, failed
    assert "intake process ended" in str(failed) and code != 0
    assert len(read_wav(tmp_path / "cache" / "takes" / "bb" / f"{'b' * 64}.wav").pcm) // 2 == samples > 0
    assert not list((tmp_path / "cache").glob("takes/aa/*.wav"))
    # the killed child's half take stays under its temporary name, never as a take; a run's sweep removes it
    assert TakeCache(tmp_path / "cache").sweep() == 1 and not list((tmp_path / "cache").glob("takes/*/.*"))
