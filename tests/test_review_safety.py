"""The review page can spend money, so every rule that guards it is tested over real HTTP: the token, the Host
header, POST-only state changes with the token in a header, audio by take id only, no key in anything served, and
a review file that two writers at once do not corrupt."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest
import yaml

from narrator.devtools.fake_openai import FakeSpeechServer
from narrator.review.server import parse_time, serve
from narrator.spec import load_job
from tests.books import sentence
from tests.conftest import run_cli, write_job

KEY = "sk-test-0123456789abcdefghijklmnop"


@pytest.fixture(scope="module")
def desk(tmp_path_factory):
    folder = tmp_path_factory.mktemp("desk")
    text = "# One\n\n" + "\n\n".join(sentence(i, 8) for i in range(6))
    (folder / "book.md").write_text(text + "\n", encoding="utf-8")
    with FakeSpeechServer(KEY) as fake:
        spec = {"sources": ["book.md"], "voice": {"provider": "openai", "base_url": fake.url},
                "output": {"dir": "out", "formats": ["mp3"]}, "cache": "cache",
                "chunking": {"target_chars": 0}}  # one take a paragraph  # fmt: skip
        job = write_job(folder, spec)
        assert run_cli("run", str(job), env={"OPENAI_API_KEY": KEY}).returncode == 0
    server = serve(load_job(job))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    host, port = server.server_address[:2]
    base = f"http://{host}:{port}"
    takes = [t.id for t in server.desk.script.takes]
    yield folder, server, base, server.desk.token, takes
    server.shutdown()
    server.server_close()


def test_it_listens_on_this_machine_only_by_default(desk):
    folder, server, base, token, takes = desk
    assert server.server_address[0] == "127.0.0.1"


def test_no_token_or_a_wrong_one_is_refused(desk):
    folder, server, base, token, takes = desk
    assert httpx.get(f"{base}/").status_code == 403
    assert httpx.get(f"{base}/?token=not-it").status_code == 403
    assert httpx.get(f"{base}/api/book").status_code == 403
    assert httpx.get(f"{base}/audio/{takes[1]}/0").status_code == 403
    assert httpx.get(f"{base}/?token={token}").status_code == 200


def test_a_foreign_host_header_is_refused_even_with_the_token(desk):
    folder, server, base, token, takes = desk
    # DNS rebinding: a page on evil.example whose name now points at 127.0.0.1
    port = server.server_address[1]
    answer = httpx.get(f"{base}/?token={token}", headers={"Host": f"evil.example:{port}"})
    assert answer.status_code == 421
    assert httpx.get(f"{base}/?token={token}", headers={"Host": f"localhost:{port}"}).status_code == 200


def test_state_changes_need_a_post_with_the_token_in_a_header(desk):
    folder, server, base, token, takes = desk
    # the token in the URL (as a link or an image would carry it) is not enough to change anything
    assert httpx.post(f"{base}/api/take/{takes[1]}?token={token}", json={"status": "approved"}).status_code == 403
    assert httpx.get(f"{base}/api/take/{takes[1]}?token={token}").status_code == 404  # no GET that changes state
    assert not (folder / "job.review.yaml").exists()
    answer = httpx.post(f"{base}/api/take/{takes[1]}", json={"status": "approved"}, headers={"X-Narrator-Token": token})
    assert answer.status_code == 200 and answer.json()["status"] == "approved"
    bad = httpx.post(f"{base}/api/take/{takes[1]}", json={"status": "great"}, headers={"X-Narrator-Token": token})
    assert bad.status_code == 400


def test_audio_is_served_by_take_id_only_with_ranges(desk):
    folder, server, base, token, takes = desk
    for path in ("/audio/../../etc/passwd/0", "/audio/%2e%2e%2fcache/0", f"/audio/{takes[1]}/7",
                 "/audio/t000000000000/0", "/cache/", "/out/manifest.json"):  # fmt: skip
        assert httpx.get(f"{base}{path}?token={token}").status_code in (400, 404), path
    whole = httpx.get(f"{base}/audio/{takes[1]}/0?token={token}")
    assert whole.status_code == 200 and whole.content[:4] == b"RIFF"
    part = httpx.get(f"{base}/audio/{takes[1]}/0?token={token}", headers={"Range": "bytes=100-199"})
    assert part.status_code == 206 and part.content == whole.content[100:200]
    assert part.headers["content-range"] == f"bytes 100-199/{len(whole.content)}"


def test_the_key_never_reaches_the_page(desk):
    folder, server, base, token, takes = desk
    for path in ("/", "/api/book", "/api/chapter/0"):
        assert KEY not in httpx.get(f"{base}{path}?token={token}").text


def test_two_writers_at_once_lose_nothing(desk):
    folder, server, base, token, takes = desk
    headers = {"X-Narrator-Token": token}

    def note(i: int) -> int:
        return httpx.post(f"{base}/api/take/{takes[i]}", json={"note": f"note {i}"}, headers=headers).status_code

    with ThreadPoolExecutor(6) as pool:
        assert set(pool.map(note, range(len(takes)))) == {200}
    saved = yaml.safe_load((folder / "job.review.yaml").read_text(encoding="utf-8"))
    assert {saved["takes"][t]["note"] for t in takes} == {f"note {i}" for i in range(len(takes))}
    assert list(saved["takes"]) == sorted(saved["takes"])  # stable order: diff-friendly


def test_times_are_read_as_an_editor_writes_them():
    assert parse_time("2:13:05") == 2 * 3600 + 13 * 60 + 5
    assert parse_time("13:05.5") == 785.5 and parse_time("42") == 42
    with pytest.raises(ValueError):
        parse_time("../1")


def test_a_chapters_instructions_reach_every_take_of_it(desk):
    folder, server, base, token, takes = desk
    headers = {"X-Narrator-Token": token}
    said = httpx.post(f"{base}/api/chapter/0/instructions", json={"instructions": "Slow and low."}, headers=headers)
    assert said.status_code == 200
    chapter = said.json()
    assert {t["instructions"] for t in chapter["takes"]} == {"Slow and low."}
    # asked with other instructions, each take is a new request: none has audio yet
    assert all(t["variants"] == [] and t["chosen"] is None for t in chapter["takes"])
    cleared = httpx.post(f"{base}/api/chapter/0/instructions", json={"instructions": ""}, headers=headers).json()
    assert {t["instructions"] for t in cleared["takes"]} == {None}
    assert all(t["variants"] == [0] for t in cleared["takes"])  # back to the takes already made
    assert httpx.post(f"{base}/api/chapter/9/instructions", json={}, headers=headers).status_code == 404
