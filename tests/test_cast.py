"""The cast in a run: dialogue in the characters' voices through the loopback fake, which records the voice and
instructions of every request; a take never mixes two speakers; narration stays the narrator's; a change of one
character's voice redoes that character's takes and no others (and `diff` says so first)."""

from __future__ import annotations

import json
import os
import shutil
import threading
from pathlib import Path

import pytest
import yaml

from devtools.fake_openai import FakeSpeechServer
from narrator.review.speakers import SAMPLE
from narrator.text.dialogue.quotes import paragraph_spans
from tests.conftest import run_cli, write_job
from tests.dialogue_scenes import SCENES

pytestmark = pytest.mark.slow

KEY = "sk-test-0123456789abcdefghijklmnop"


def book(folder: Path, url: str) -> Path:
    chapters = [f"# {name.title()}\n\n" + "\n\n".join(paragraphs) for name, (paragraphs, _) in SCENES.items()]
    (folder / "scenes.md").write_text("\n\n".join(chapters) + "\n", encoding="utf-8")
    cast = {"narrator": {"voice": "coral", "instructions": "Warm, measured narration."},
            "characters": {"Mara": {"voice": "nova", "instructions": "Quick, young."},
                           "Tobias": {"instructions": "Gruff, kind."}}}  # fmt: skip
    spec = {"sources": [{"path": "scenes.md", "split_at": 1}], "voice": {"provider": "openai", "base_url": url},
            "output": {"dir": "out", "formats": ["mp3"]}, "cache": "cache", "cast": cast}  # fmt: skip
    return write_job(folder, spec)


def run(job: Path):
    result = run_cli("run", str(job), env={"OPENAI_API_KEY": KEY})
    assert result.returncode == 0, result.stderr
    return json.loads((job.parent / "out" / "manifest.json").read_text())


def test_dialogue_is_read_in_the_characters_voices_and_a_recast_redoes_only_theirs(tmp_path):
    with FakeSpeechServer(KEY) as server:
        job = book(tmp_path, server.url)
        manifest = run(job)
        first = [r for r in server.records if r.status == 200]
    cast = yaml.safe_load((tmp_path / "job.cast.yaml").read_text())  # made by the run, as none was there
    voices = {name: c["voice"] for name, c in cast["characters"].items()} | {"narrator": "coral"}
    assert voices["Mara"] == "nova" and len(set(voices.values())) == len(voices)
    speakers: dict[str, set[str]] = {}
    for chunk in manifest["chunks"]:
        speakers.setdefault(chunk["take"], set()).add(chunk["speaker"])
    assert all(len(s) == 1 for s in speakers.values())  # a take never mixes two speakers
    said = {t["text"]: next(iter(speakers[t["id"]])) for t in manifest["takes"]}
    for record in first:  # each request in its speaker's voice, with its instructions
        speaker = said[record.input]
        assert record.voice == voices[speaker], (record.input, speaker)
        if speaker == "narrator":
            assert record.instructions == "Warm, measured narration."
        if speaker == "Tobias":
            assert record.instructions == "Gruff, kind."
    # narration in a character's voice: what of their chunks lies outside the quotation marks
    voiced = [c["text"] for c in manifest["chunks"] if c["speaker"] != "narrator"]
    outside = sum(len(t) - sum(e - b for b, e in paragraph_spans(t)[0]) for t in voiced)
    narration = sum(len(c["text"]) for c in manifest["chunks"] if c["speaker"] == "narrator")
    assert voiced and outside / narration < 0.02, outside
    # the editor gives Tobias another voice: only his takes are asked for again, and diff says so first
    tobias = {t for t, s in speakers.items() if s == {"Tobias"}}
    cast["characters"]["Tobias"]["voice"] = "verse"
    (tmp_path / "job.cast.yaml").write_text(yaml.safe_dump(cast, sort_keys=False), encoding="utf-8")
    diff = run_cli("diff", str(job), "--json", env={"OPENAI_API_KEY": KEY})
    changes = [c for chapter in json.loads(diff.stdout)["chapters"] for c in chapter["changes"]]
    assert json.loads(diff.stdout)["requests"] == len(tobias) == len(changes), diff.stdout
    assert all(c["kind"] == "revoiced" and c["text"].startswith("Tobias: ") for c in changes)
    with FakeSpeechServer(KEY) as server:
        cast_job = yaml.safe_load(job.read_text())
        cast_job["voice"]["base_url"] = server.url
        job.write_text(yaml.safe_dump(cast_job, sort_keys=False), encoding="utf-8")
        run(job)
        again = [r for r in server.records if r.status == 200]
    assert len(again) == len(tobias) and {r.voice for r in again} == {"verse"}


CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


@pytest.mark.skipif(CHROMIUM is None and not os.environ.get("CI"), reason="needs Debian's chromium (make test)")
def test_the_editor_gives_a_quotation_to_another_speaker_on_the_review_page(tmp_path, monkeypatch):
    """In a real browser: the review page shows who reads each take, shows one character's takes alone, and a
    quotation given to another character is in the cast file as the editor's word; the next run redoes exactly
    that quotation's takes, in the new speaker's voice."""
    from playwright.sync_api import expect, sync_playwright

    from narrator.job.spec import load_job
    from narrator.review.server import serve, url

    monkeypatch.setenv("OPENAI_API_KEY", KEY)
    with FakeSpeechServer(KEY) as fake:
        job = book(tmp_path, fake.url)
        manifest = run(job)
        served = serve(load_job(job))
        threading.Thread(target=served.serve_forever, daemon=True).start()
        try:
            with sync_playwright() as playwright:
                browser = playwright.chromium.launch(executable_path=CHROMIUM)
                page = browser.new_page(viewport={"width": 1100, "height": 760})
                problems: list[str] = []
                page.on("pageerror", lambda e: problems.append(str(e)))
                page.goto(url(served))
                takes = page.locator("#takes .take")
                page.select_option("#filter", "speaker:Tobias")  # the first chapter: Tobias's lines alone
                shown = takes.locator("visible=true")
                expect(shown.first).to_be_visible()
                count = shown.count()
                first = [c for c in manifest["chunks"] if c["chapter"] == 1 and c["speaker"] == "Tobias"]
                assert first and count == len({c["take"] for c in first})
                said = shown.first.locator("select[data-quotation]")
                quotation = said.get_attribute("data-quotation")
                said.select_option("Agnes")
                expect(page.locator("#status")).to_contain_text("now said by Agnes")
                # the cast panel: a voice heard before it is chosen, then chosen for Tobias
                page.click("#cast")
                page.select_option("#panel select[name=who]", "Tobias")
                page.select_option("#panel select[name=voice]", "ballad")
                page.click("#hear")
                page.wait_for_function("() => !document.getElementById('player').paused")
                assert any(r.voice == "ballad" and r.input == SAMPLE for r in fake.records)
                page.click("#panel button[type=submit]")
                expect(page.locator("#status")).to_contain_text("saved: Tobias in ballad")
                assert not problems, problems
                browser.close()
        finally:
            served.shutdown()
            served.server_close()
        cast = yaml.safe_load((tmp_path / "job.cast.yaml").read_text())
        assert cast["characters"]["Tobias"]["voice"] == "ballad"
        [line] = [q for q in cast["quotations"] if q["id"] == quotation]
        assert line["speaker"] == "Agnes" and line["how"] == "editor"
        asked = len(fake.records)
        again = run(job)
        redone = [r for r in fake.records[asked:] if r.status == 200]
    # redone: the quotation given to Agnes (in her voice), and every take of Tobias (in his new one)
    agnes = cast["characters"]["Agnes"]["voice"]
    moved = {c["take"] for c in again["chunks"] if c["speaker"] == "Agnes"} - {
        c["take"] for c in manifest["chunks"] if c["speaker"] == "Agnes"
    }
    tobias = {c["take"] for c in again["chunks"] if c["speaker"] == "Tobias"}
    assert len(redone) == len(moved) + len(tobias)
    assert sorted(r.voice for r in redone) == sorted([agnes] * len(moved) + ["ballad"] * len(tobias))
