"""The catalogue on a real Ray cluster of two nodes on this machine (a head and a worker, loopback only, small CPU
counts), through the real CLI and the loopback fake limited to a fixed pace. Zero 429s, every take once, every
book whole, each chapter's files and M4B segment made by a task of its own; a worker node killed mid-run costs
only its unfinished tasks. These run in CI (`make test` installs
the ray extra): they fail there, never skip."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest
import yaml

from devtools.fake_openai import FakeSpeechServer, Faults
from devtools.raycluster import LocalCluster
from narrator.core import ffmpeg
from tests.books import paragraph
from tests.epubreader import ReadAlongBook

pytestmark = pytest.mark.slow  # each over half a second: `pytest -m 'not slow'` leaves them out

KEY = "sk-test-ray-0123456789abcdefghij"
RPM = 300


@pytest.fixture
def cluster():
    with LocalCluster() as started:
        yield started


def _catalogue(folder: Path, url: str, books: int = 6) -> Path:
    for n in range(books):
        chapters = [f"# Part {c + 1}\n\n" + "\n\n".join(f"Book {n} part {c + 1} page {p + 1}. {paragraph(n * 50 + p)}"
                                                      for p in range(4)) for c in range(2)]  # fmt: skip
        (folder / f"book{n}.md").write_text("\n\n".join(chapters) + "\n", encoding="utf-8")
        spec = {"sources": [f"book{n}.md"], "title": f"Book {n}", "voice": {"provider": "openai", "base_url": url},
                "output": {"dir": f"out{n}", "formats": ["mp3", "m4b"]}, "cache": "cache",
                "chunking": {"target_chars": 1}}  # fmt: skip
        (folder / f"job{n}.yaml").write_text(yaml.safe_dump(spec), encoding="utf-8")
    path = folder / "catalogue.yaml"
    path.write_text(yaml.safe_dump({"jobs": ["job*.yaml"], "requests_per_minute": RPM}), encoding="utf-8")
    return path


def _run(folder: Path, cluster: LocalCluster) -> subprocess.Popen:
    env = {**cluster.env, "OPENAI_API_KEY": KEY}
    return subprocess.Popen([sys.executable, "-m", "narrator", "run", "catalogue.yaml", "--ray", cluster.address],
                            cwd=folder, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)  # fmt: skip


def _whole(folder: Path, books: int) -> None:
    """Every book done, every chapter file decoding to its chapter's length, every take placed in reading order."""
    for n in range(books):
        manifest = json.loads((folder / f"out{n}" / "manifest.json").read_text())
        assert {c["status"] for c in manifest["chunks"]} <= {"synthesized", "cached"}
        for chapter in manifest["chapters"]:
            name = folder / f"out{n}" / "chapters" / f"{chapter['number']:02d} {chapter['title']}.mp3"
            decoded = ffmpeg.decode(name, 24000)
            assert abs(decoded.duration - chapter["duration"]) < 0.1, (name, decoded.duration, chapter["duration"])
            offsets = [c["offset"] for c in manifest["chunks"] if c["chapter"] == chapter["number"]]
            assert offsets == sorted(offsets) and offsets[-1] < decoded.duration
        [m4b] = (folder / f"out{n}").glob("*.m4b")  # remuxed from segments the chapters' tasks encoded
        length = sum(c["duration"] for c in manifest["chapters"])
        assert abs(ffmpeg.decode(m4b, 24000).duration - length) < 0.05, (m4b, length)


def test_a_catalogue_on_two_ray_nodes_keeps_the_account_pace(cluster, tmp_path):
    with FakeSpeechServer(KEY, Faults(requests_per_minute=RPM)) as fake:
        _catalogue(tmp_path, fake.url)
        run = _run(tmp_path, cluster)
        out, err = run.communicate(timeout=600)
        records = fake.records
    assert run.returncode == 0, err
    report = json.loads((tmp_path / "catalogue-report.json").read_text())
    assert report["executor"]["kind"] == "ray" and report["executor"]["nodes"] == 2
    assert report["executor"]["tasks"] == 6 + 6 * 2 and report["executor"]["nodes_used"] == 2  # books, chapters
    for n in range(6):  # the book's report counts what its tasks did: the takes it requested, the files they made
        book = json.loads((tmp_path / f"out{n}" / "report.json").read_text())
        manifest = json.loads((tmp_path / f"out{n}" / "manifest.json").read_text())
        assert book["requests"] == len(manifest["takes"]) and book["chunks"]["synthesized"] == len(manifest["chunks"])
        assert {c["status"] for c in manifest["chunks"]} == {"synthesized"}
        # each chapter assembled by its task and again by the book's build (placements, subtitles); its file and its
        # segment encoded once, by its task; the M4B remuxed once, by the book
        assert book["stage_runs"] == {"assembly": 4, "encoding": 2, "book_encoding": 2, "remux": 1}
        assert book["text_prepared"] == 1  # by the driver: neither the book's task nor its chapters' read it again
    assert [r.status for r in records].count(429) == 0 and report["rate_limited"] == 0
    said = Counter(r.input for r in records)
    assert max(said.values()) == 1  # no take requested twice
    takes = [t for n in range(6) for t in json.loads((tmp_path / f"out{n}" / "manifest.json").read_text())["takes"]]
    assert set(said) == {t["text"] for t in takes}
    _whole(tmp_path, 6)
    logs = [p for p in Path(cluster.temp).rglob("*") if p.is_file()]
    assert logs and not any(KEY.encode() in p.read_bytes() for p in logs)  # the key never reached a Ray file


def test_a_worker_node_killed_mid_run_costs_only_its_unfinished_tasks(cluster, tmp_path):
    with FakeSpeechServer(KEY, Faults(requests_per_minute=RPM)) as fake:
        _catalogue(tmp_path, fake.url)
        run = _run(tmp_path, cluster)
        deadline = time.monotonic() + 120
        while len(fake.records) < 15 and time.monotonic() < deadline and run.poll() is None:
            time.sleep(0.05)
        assert run.poll() is None, "the run ended before the worker node could be killed"
        cluster.kill_worker()
        out, err = run.communicate(timeout=600)
    assert run.returncode == 0, err
    report = json.loads((tmp_path / "catalogue-report.json").read_text())
    assert [b["exit_code"] for b in report["books"]] == [0] * 6
    _whole(tmp_path, 6)


def test_a_book_of_sixty_chapters_is_prepared_once_for_all_its_tasks(cluster, tmp_path):
    # each chapter a task of its own; each of them once read the sources and prepared the whole book again
    chapters = [f"# Part {c + 1}\n\nPart {c + 1}. {paragraph(c)}" for c in range(60)]
    (tmp_path / "book.md").write_text("\n\n".join(chapters) + "\n", encoding="utf-8")
    spec = {
        "sources": ["book.md"],
        "title": "Sixty",
        "voice": {"provider": "openai", "base_url": "URL"},
        "output": {"dir": "out", "formats": ["mp3", "epub"]},
    }
    with FakeSpeechServer(KEY) as fake:
        spec["voice"]["base_url"] = fake.url
        (tmp_path / "job.yaml").write_text(yaml.safe_dump(spec), encoding="utf-8")
        (tmp_path / "catalogue.yaml").write_text(yaml.safe_dump({"jobs": ["job.yaml"]}), encoding="utf-8")
        run = _run(tmp_path, cluster)
        out, err = run.communicate(timeout=600)
    assert run.returncode == 0, err
    report = json.loads((tmp_path / "out" / "report.json").read_text())
    manifest = json.loads((tmp_path / "out" / "manifest.json").read_text())
    assert len(manifest["chapters"]) == 60 and report["stage_runs"]["encoding"] == 60
    # the read-along book's audio: each chapter's encoded by its task, packed by the book's
    assert report["stage_runs"]["book_encoding"] == 60
    book = ReadAlongBook(tmp_path / "out" / "Sixty.epub")
    assert len({par.audio for par in book.pars()}) == 60
    executor = json.loads((tmp_path / "catalogue-report.json").read_text())["executor"]
    assert executor["tasks"] == 1 + 60  # the book's task and one per chapter
    assert report["text_prepared"] == 1


def test_a_book_proof_listened_on_ray_retakes_its_bad_takes(cluster, tmp_path):
    # the book's task hears its takes as the local executor does: bad ones retaken, their key passed to the task
    paragraphs = [f"Page {p + 1}. {paragraph(p, 2)}" for p in range(12)]
    (tmp_path / "book.md").write_text("# One\n\n" + "\n\n".join(paragraphs) + "\n", encoding="utf-8")
    with FakeSpeechServer(KEY, Faults(bad_take_rate=0.5, bad_kinds=("replace", "repeat"), vary=True, seed=5)) as fake:
        spec = {"sources": ["book.md"], "voice": {"provider": "openai", "base_url": fake.url},
                "output": {"dir": "out", "formats": ["mp3"]}, "chunking": {"target_chars": 1},
                "proof": {"model": "whisper-1", "retakes": 6, "api_key_env": "PROOF_KEY"}}  # fmt: skip
        (tmp_path / "job.yaml").write_text(yaml.safe_dump(spec), encoding="utf-8")
        (tmp_path / "catalogue.yaml").write_text(yaml.safe_dump({"jobs": ["job.yaml"]}), encoding="utf-8")
        env = {**cluster.env, "OPENAI_API_KEY": KEY, "PROOF_KEY": KEY}
        run = subprocess.run([sys.executable, "-m", "narrator", "run", "catalogue.yaml", "--ray", cluster.address],
                             cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600)  # fmt: skip
        bad = sum(1 for r in fake.records if r.bad)
    assert run.returncode == 0, run.stderr
    report = json.loads((tmp_path / "out" / "report.json").read_text())
    manifest = json.loads((tmp_path / "out" / "manifest.json").read_text())
    assert bad and report["proof"]["retakes"] >= 1 and report["proof"]["heard"] == len(fake.heard)
    proofs = [t["proof"] for t in manifest["takes"]]
    assert any(p["retakes"] and p["verdict"] == "passed" for p in proofs)  # a bad take retaken into the book
    assert all(p["verdict"] == "passed" or p["retakes"] == 6 for p in proofs)  # one still bad tried all six
