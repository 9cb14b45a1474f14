"""The review page can spend money, so every rule that guards it is tested over real HTTP: the token, the Host
header, POST-only state changes with the token in a header, audio by take id only, no key in anything served, and
a review file that two writers at once do not corrupt."""

from __future__ import annotations

import json
import threading
from concurrent.futures import ThreadPoolExecutor

import httpx
import jsonschema
import pytest
import yaml

from devtools.fake_openai import FakeSpeechServer
from narrator.job.spec import load_job
from narrator.review.server import parse_time, serve
from tests.books import sentence
from tests.conftest import REPO, run_cli, write_job

pytestmark = pytest.mark.slow  # each over half a second: `pytest -m 'not slow'` leaves them out

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


def test_what_the_page_is_sent_validates_against_its_schemas(desk):
    folder, server, base, token, takes = desk
    schemas = REPO / "docs" / "schemas"
    for path, name in (("/api/book", "review-book"), ("/api/chapter/0", "review-chapter")):
        sent = httpx.get(f"{base}{path}?token={token}").json()
        jsonschema.validate(sent, json.loads((schemas / f"{name}.v2.json").read_text(encoding="utf-8")))
    broken = {**sent, "takes": [{**sent["takes"][0], "status": "loved"}]}  # the schema knows the words
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(broken, json.loads((schemas / "review-chapter.v2.json").read_text(encoding="utf-8")))


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


def test_many_decisions_at_once_and_undo_puts_back_what_was_there(desk):
    folder, server, base, token, takes = desk
    headers = {"X-Narrator-Token": token}
    review = folder / "job.review.yaml"
    httpx.post(f"{base}/api/take/{takes[1]}", json={"status": "rejected", "note": "too fast"}, headers=headers)
    httpx.post(f"{base}/api/restore", json={"takes": {takes[2]: None}}, headers=headers)  # no decision at all
    before_file = review.read_text(encoding="utf-8")
    chosen = takes[1:4]  # one rejected with a note, one without a decision, one with only a note
    done = httpx.post(
        f"{base}/api/decisions", json={"takes": {t: {"status": "approved"} for t in chosen}}, headers=headers
    )
    assert done.status_code == 200
    assert [t["status"] for t in done.json()["takes"]] == ["approved"] * 3
    assert done.json()["before"][takes[1]]["status"] == "rejected" and done.json()["before"][takes[2]] is None
    saved = yaml.safe_load(review.read_text(encoding="utf-8"))["takes"]
    assert {saved[t]["status"] for t in chosen} == {"approved"}
    undone = httpx.post(f"{base}/api/restore", json={"takes": done.json()["before"]}, headers=headers)
    assert undone.status_code == 200
    assert [t["status"] for t in undone.json()["takes"]] == ["rejected", "unheard", "unheard"]
    assert review.read_text(encoding="utf-8") == before_file  # exactly as it was
    book = httpx.get(f"{base}/api/book", headers=headers).json()
    assert book["totals"]["takes"] == len(takes) and book["totals"]["rejected"] >= 1
    assert sum(book["totals"][s] for s in ("approved", "rejected", "stale", "unheard")) == len(takes)
    bad = httpx.post(f"{base}/api/decisions", json={"takes": {"t000000000000": {}}}, headers=headers)
    assert bad.status_code == 400 and "no such take" in bad.json()["error"]


def test_search_finds_takes_by_their_text_ignoring_case(desk):
    folder, server, base, token, takes = desk
    headers = {"X-Narrator-Token": token}
    script = server.desk.script
    word = script.text_of(script.takes[3]).split()[2].strip(".,;")
    found = httpx.get(f"{base}/api/search", params={"q": word.upper()}, headers=headers).json()
    expected = [t.id for t in script.takes if word.casefold() in script.text_of(t).casefold()]
    assert [r["id"] for r in found["results"]] == expected and found["count"] == len(expected) >= 1
    hit = found["results"][0]
    assert hit["match"].casefold() == word.casefold() and hit["chapter"] == 0
    assert httpx.get(f"{base}/api/search", params={"q": " "}, headers=headers).status_code == 400


def test_instructions_are_offered_only_by_voices_that_read_them(tmp_path):
    (tmp_path / "book.md").write_text("# One\n\nA short paragraph to read.\n", encoding="utf-8")
    for voice, takes_them in (({"provider": "local"}, False), ({"provider": "openai", "model": "tts-1"}, False),
                              ({"provider": "openai", "model": "gpt-4o-mini-tts"}, True)):  # fmt: skip
        job = write_job(tmp_path, {"sources": ["book.md"], "voice": voice, "cache": "cache"})
        server = serve(load_job(job))
        assert server.desk.voice().instructions is takes_them
        take = server.desk.script.takes[0].id
        threading.Thread(target=server.serve_forever, daemon=True).start()
        host, port = server.server_address[:2]
        said = httpx.post(f"http://{host}:{port}/api/take/{take}", json={"instructions": "Slowly."},
                          headers={"X-Narrator-Token": server.desk.token})  # fmt: skip
        server.shutdown()
        server.server_close()
        assert said.status_code == (200 if takes_them else 400), said.text


def test_the_review_files_lock_stays_out_of_git_status(tmp_path):
    import shutil
    import subprocess

    from narrator.job.review import update_review

    if shutil.which("git") is None:
        pytest.skip("no git")
    job = tmp_path / "job.yaml"
    job.write_text("sources: []\n", encoding="utf-8")
    subprocess.run(["git", "init", "-q", str(tmp_path)], check=True)
    update_review(job, lambda review: review.lexicon.__setitem__("Lizzy", "Lizzie"))
    status = subprocess.run(["git", "status", "--porcelain", "-uall"], cwd=tmp_path, capture_output=True, text=True)
    assert sorted(line[3:] for line in status.stdout.splitlines()) == ["job.review.yaml", "job.yaml"]
    assert list((tmp_path / ".narrator").glob("*.lock"))  # it is there, only ignored
