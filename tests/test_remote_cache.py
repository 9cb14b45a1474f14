"""The take cache on object storage: a real S3 API on loopback (moto's server, started and stopped here), the real
CLI in real processes, s3fs in between. Two working folders share one `s3://` cache; two runs store the same
takes at once; a damaged object is found, never used, and replaced. These run in CI (the s3 extra and moto are
installed by `make test`): they fail there, never skip."""

from __future__ import annotations

import hashlib
import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import boto3
import pytest
import yaml
from moto.server import ThreadedMotoServer

from devtools.fake_openai import FakeSpeechServer
from narrator.core import ffmpeg
from tests.books import paragraph
from tests.conftest import run_cli

pytestmark = pytest.mark.slow  # each over half a second: `pytest -m 'not slow'` leaves them out

KEY = "sk-test-0123456789abcdefghijklmnop"
BUCKET = "audiobooks"
SECRET = "moto-secret-0123456789"


@pytest.fixture
def s3():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    env = {"AWS_ACCESS_KEY_ID": "moto-key", "AWS_SECRET_ACCESS_KEY": SECRET, "AWS_DEFAULT_REGION": "us-east-1",
           "AWS_ENDPOINT_URL": f"http://127.0.0.1:{port}", "OPENAI_API_KEY": KEY}  # fmt: skip
    client = boto3.client("s3", endpoint_url=env["AWS_ENDPOINT_URL"], aws_access_key_id="moto-key",
                          aws_secret_access_key=SECRET, region_name="us-east-1")  # fmt: skip
    client.create_bucket(Bucket=BUCKET)
    try:
        yield client, env
    finally:
        server.stop()


def _objects(client) -> dict[str, bytes]:
    listed = client.list_objects_v2(Bucket=BUCKET).get("Contents", [])
    return {o["Key"]: client.get_object(Bucket=BUCKET, Key=o["Key"])["Body"].read() for o in listed}


def _sound(data: bytes, name: str) -> bool:
    """Does this object decode to the samples its name promises (``<rate>-<sha256>.flac``)?"""
    rate, digest = name.rsplit("/", 1)[1].removesuffix(".flac").split("-")
    try:
        pcm = b"".join(ffmpeg.stream_pcm(data, int(rate), "flac"))
    except Exception:
        return False
    return hashlib.sha256(pcm).hexdigest() == digest


def _folder(root: Path, name: str, url: str) -> Path:
    folder = root / name
    folder.mkdir()
    chapters = [f"# Part {c + 1}\n\n" + "\n\n".join(paragraph(c * 10 + p, 2) for p in range(3)) for c in range(2)]
    (folder / "book.md").write_text("\n\n".join(chapters) + "\n", encoding="utf-8")
    spec = {"sources": ["book.md"], "title": "Shared", "voice": {"provider": "openai", "base_url": url},
            "output": {"dir": "out", "formats": ["mp3"]}, "cache": f"s3://{BUCKET}/takes-cache",
            "chunking": {"target_chars": 1}}  # fmt: skip
    (folder / "job.yaml").write_text(yaml.safe_dump(spec), encoding="utf-8")
    return folder


def _built(root: Path, name: str, url: str, env: dict[str, str]) -> Path:
    """A working folder whose book has been run once, successfully."""
    folder = _folder(root, name, url)
    ran = run_cli("run", "job.yaml", cwd=folder, env=env)
    assert ran.returncode == 0, ran.stderr
    return folder


def _report(folder: Path) -> dict:
    return json.loads((folder / "out" / "report.json").read_text())


def test_two_working_folders_share_one_s3_cache(s3, tmp_path):
    client, env = s3
    with FakeSpeechServer(KEY) as fake:
        first, second = _folder(tmp_path, "first", fake.url), _folder(tmp_path, "second", fake.url)
        made = run_cli("run", "job.yaml", cwd=first, env=env)
        assert made.returncode == 0, made.stderr
        requested = len(fake.records)
        again = run_cli("run", "job.yaml", cwd=second, env=env)
        assert again.returncode == 0, again.stderr
        assert len(fake.records) == requested  # the second folder synthesized nothing
        built = _report(second)
        rerun = run_cli("run", "job.yaml", cwd=second, env=env)
    objects = _objects(client)
    takes = json.loads((first / "out" / "manifest.json").read_text())["takes"]
    assert requested == len(takes) and len(objects) == len(takes)
    assert all(name.endswith(".flac") and _sound(data, name) for name, data in objects.items())
    # FLAC holds the same samples in fewer bytes than the WAV the run kept locally
    local = sum(p.stat().st_size for p in (first / "out" / ".narrator" / "cache").rglob("*.wav"))
    assert sum(len(d) for d in objects.values()) < 0.8 * local
    assert built["chunks"]["reused"] == built["chunks"]["total"] and built["requests"] == 0
    assert built["stage_runs"].get("encoding") == 2  # its own two chapter files, once
    assert rerun.returncode == 0 and _report(second)["stage_runs"] == {}  # and then nothing at all
    for chapter in ("01 Part 1.mp3", "02 Part 2.mp3"):  # the same takes, so the same sound
        assert (first / "out/chapters" / chapter).read_bytes() == (second / "out/chapters" / chapter).read_bytes()
    for written in (first / "out").rglob("*.json"):
        assert SECRET not in written.read_text() and "moto-key" not in written.read_text()


def test_two_runs_storing_the_same_takes_at_once_leave_no_damaged_object(s3, tmp_path):
    client, env = s3
    with FakeSpeechServer(KEY) as fake:
        folders = [_folder(tmp_path, name, fake.url) for name in ("one", "two")]
        command = [sys.executable, "-m", "narrator", "run", "job.yaml"]
        runs = [subprocess.Popen(command, cwd=f, env={**os.environ, **env}, stderr=subprocess.PIPE, text=True)
                for f in folders]  # fmt: skip
        outcomes = [(r.wait(timeout=300), r.stderr.read() if r.stderr else "") for r in runs]
    assert [code for code, _ in outcomes] == [0, 0], outcomes
    objects = _objects(client)
    keys = {name.split("/")[-2] for name in objects}
    takes = json.loads((folders[0] / "out" / "manifest.json").read_text())["takes"]
    assert keys == {t["cache_key"] for t in takes}
    assert all(_sound(data, name) for name, data in objects.items())


def test_a_damaged_object_is_detected_never_used_and_replaced(s3, tmp_path):
    client, env = s3
    with FakeSpeechServer(KEY) as fake:
        _built(tmp_path, "first", fake.url, env)
        objects = _objects(client)
        damaged = sorted(objects)[2]
        client.put_object(Bucket=BUCKET, Key=damaged, Body=objects[damaged][: len(objects[damaged]) // 2])
        sent = len(fake.records)
        second = _folder(tmp_path, "second", fake.url)
        again = run_cli("run", "job.yaml", cwd=second, env=env)
        assert again.returncode == 0, again.stderr
        remade = fake.records[sent:]
    key = damaged.split("/")[-2]
    manifest = json.loads((second / "out" / "manifest.json").read_text())
    [take] = [t for t in manifest["takes"] if t["cache_key"] == key]
    assert [r.input for r in remade] == [take["text"]]  # that take alone was made again
    after = _objects(client)
    assert len(after) == len(objects) and all(_sound(data, name) for name, data in after.items())
    assert _report(second)["chunks"]["synthesized"] == len(take["chunks"])


def test_a_take_the_store_lost_is_stored_by_the_next_run_from_that_folder(s3, tmp_path):
    """A store that failed (here: the bucket emptied after the run) leaves the takes in that folder only; the next
    run from it stores them, requesting nothing, and a second folder then finds every one."""
    client, env = s3
    with FakeSpeechServer(KEY) as fake:
        first = _built(tmp_path, "first", fake.url, env)
        stored = _objects(client)
        for name in stored:
            client.delete_object(Bucket=BUCKET, Key=name)
        sent = len(fake.records)
        again = run_cli("run", "job.yaml", cwd=first, env=env)
        assert again.returncode == 0, again.stderr
        assert _objects(client) == stored and len(fake.records) == sent
        second = _built(tmp_path, "second", fake.url, env)
        assert len(fake.records) == sent and _report(second)["requests"] == 0


def test_cache_stats_and_prune_work_on_the_remote_cache(s3, tmp_path):
    client, env = s3
    with FakeSpeechServer(KEY) as fake:
        folder = _built(tmp_path, "book", fake.url, env)
    before = _objects(client)
    text = (folder / "book.md").read_text()
    (folder / "book.md").write_text(text[: text.index("# Part 2")], encoding="utf-8")  # the book loses a chapter
    stats = run_cli("cache", "stats", "job.yaml", cwd=folder, env=env)
    assert stats.returncode == 0 and f"s3://{BUCKET}/takes-cache" in stats.stdout and "unused" in stats.stdout
    dry = run_cli("cache", "prune", "job.yaml", cwd=folder, env=env)
    assert dry.returncode == 0 and _objects(client) == before
    pruned = run_cli("cache", "prune", "job.yaml", "--yes", cwd=folder, env=env)
    assert pruned.returncode == 0, pruned.stderr
    kept = {name.split("/")[-2] for name in _objects(client)}
    still = json.loads((folder / "out" / "manifest.json").read_text())["takes"]
    used = {t["cache_key"] for t in still if t["chapter"] == 1}
    assert kept == used and len(kept) < len(before)


def test_a_cache_url_is_checked_and_keeps_credentials_out(tmp_path):
    (tmp_path / "b.md").write_text("# One\n\nA line.\n", encoding="utf-8")
    cases = {
        "s3://AKIAEXAMPLE:hunter2secret@bucket/p": "credentials do not go in the job file",
        "ftp://host/takes": "a folder or a URL of s3://",
        "s3://": "name the bucket",
    }
    for url, says in cases.items():
        spec = {"sources": ["b.md"], "output": {"dir": "out"}, "cache": url}
        (tmp_path / "job.yaml").write_text(yaml.safe_dump(spec, sort_keys=False), encoding="utf-8")
        checked = run_cli("validate", "job.yaml", cwd=tmp_path)
        assert checked.returncode == 2 and checked.stderr.count("\n") == 1, checked.stderr
        assert f"job.yaml:5: cache: {says}" in checked.stderr and "hunter2secret" not in checked.stderr


def test_the_default_path_imports_nothing_of_the_extras():
    probe = "; ".join([
        "import sys", "from narrator.cli import main", "from narrator.job.spec import load_job",
        "from narrator.synthesis.script import prepare_script", "from narrator.run import engine",
        "from narrator.catalogue import runner", "prepare_script(load_job('pipelines/demo.yaml'))",
        "extras = {'fsspec', 's3fs', 'boto3', 'botocore', 'ray'}",
        "print(sorted({m.split('.')[0] for m in sys.modules} & extras))",
    ])  # fmt: skip
    done = subprocess.run([sys.executable, "-c", probe], cwd=Path(__file__).resolve().parent.parent,
                          capture_output=True, text=True)  # fmt: skip
    assert done.returncode == 0 and done.stdout.strip() == "[]", done.stderr


def test_without_the_s3_extra_a_remote_cache_is_one_line_naming_the_job(tmp_path):
    (tmp_path / "b.md").write_text("# One\n\nA line.\n", encoding="utf-8")
    (tmp_path / "job.yaml").write_text("sources: [b.md]\noutput: {dir: out}\ncache: s3://bucket/p\n", "utf-8")
    # as on a machine without the extra: importing fsspec fails
    cli = "import sys; sys.modules['fsspec'] = None; from narrator.cli import main; main()"
    done = subprocess.run([sys.executable, "-c", cli, "plan", "job.yaml"], cwd=tmp_path, capture_output=True,
                          text=True)  # fmt: skip
    assert done.returncode == 2 and done.stderr.count("\n") == 1, done.stderr
    assert "job.yaml: cache: s3://bucket/p needs the s3 extra: pip install 'narrator[s3]'" in done.stderr
