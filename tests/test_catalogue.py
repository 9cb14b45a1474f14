"""A catalogue: several books in one `narrator run`, through the real CLI and the loopback fake. Books of one
account share its pace (no 429 from a server enforcing it, though each book alone would keep to it), requests
are served book by book, the worst book sets the exit code, and what cannot run is refused before anything is
sent. Reports CI reads: the catalogue report, JUnit with a suite per book, the step summary in Markdown."""

from __future__ import annotations

import json
import shutil
import xml.etree.ElementTree as ET
from collections import Counter
from pathlib import Path

import pytest
import yaml
from markdown_it import MarkdownIt

from devtools.fake_openai import FakeSpeechServer, Faults
from tests.books import paragraph
from tests.conftest import run_cli

pytestmark = pytest.mark.slow  # each over half a second: `pytest -m 'not slow'` leaves them out

KEY = "sk-test-0123456789abcdefghijklmnop"
ENV = {"OPENAI_API_KEY": KEY}


def _book(folder: Path, number: int, edit: str = "") -> Path:
    """Two chapters of six paragraphs, each a take of its own (chunking.target_chars below)."""
    chapters = []
    for c in range(2):
        texts = [f"Book {number}, part {c + 1}, page {p + 1}. {paragraph(number * 100 + c * 10 + p, 2)}"
                 for p in range(6)]  # fmt: skip
        if edit and c == 1:
            texts[3] = texts[3].replace(" ", f" {edit} ", 1)
        chapters.append(f"# Part {c + 1}\n\n" + "\n\n".join(texts))
    path = folder / f"book{number}.md"
    path.write_text("\n\n".join(chapters) + "\n", encoding="utf-8")
    return path


def _catalogue(folder: Path, url: str, rates: list[float | None], **shared: object) -> Path:
    for number, rate in enumerate(rates):
        _book(folder, number)
        job = {"sources": [f"book{number}.md"], "title": f"Book {number}",
               "voice": {"provider": "openai", "base_url": url}, "output": {"dir": f"out{number}", "formats": ["mp3"]},
               "cache": "cache", "chunking": {"target_chars": 1}}  # fmt: skip
        if rate is not None:
            job["requests_per_minute"] = rate
        (folder / f"job{number}.yaml").write_text(yaml.safe_dump(job, sort_keys=False), encoding="utf-8")
    path = folder / "catalogue.yaml"
    path.write_text(yaml.safe_dump({"jobs": ["job*.yaml"], **shared}), encoding="utf-8")
    return path


def _take_texts(out: Path) -> set[str]:
    return {t["text"] for t in json.loads((out / "manifest.json").read_text())["takes"]}


def test_books_of_one_account_share_its_pace_and_are_served_in_order(tmp_path):
    # the server allows 300 a minute for the account; one book declares it, one a faster pace, one none. Paced
    # apart (or at the sum), three books at once cross it at once; at the smallest declared pace, never
    with FakeSpeechServer(KEY, Faults(requests_per_minute=300)) as fake:
        catalogue = _catalogue(tmp_path, fake.url, [600, 300, None], concurrency=4)
        done = run_cli("run", str(catalogue), cwd=tmp_path, env=ENV)
        records = fake.records
    assert done.returncode == 0, done.stderr
    assert [r.status for r in records].count(429) == 0
    report = json.loads((tmp_path / "catalogue-report.json").read_text())
    assert report["exit_code"] == 0 and report["rate_limited"] == 0
    [account] = report["accounts"]
    assert account["books"] == 3 and account["requests_per_minute"] == 300
    texts = [_take_texts(tmp_path / f"out{n}") for n in range(3)]
    assert report["requests"] == len(records) == sum(len(t) for t in texts) == 36
    assert [b["requests"] for b in report["books"]] == [12, 12, 12]
    # book by book: past each book's first request (which goes early, alone, while slots are free), the third
    # book's requests start only once the first's are all out
    order = [next(n for n, t in enumerate(texts) if r.input in t) for r in records]
    firsts = {order.index(n) for n in range(3)}
    rest = [n for i, n in enumerate(order) if i not in firsts]
    assert rest.index(2) > max(i for i, n in enumerate(rest) if n == 0), order


def test_the_worst_book_sets_the_exit_code_and_every_report_says_why(tmp_path):
    summary = tmp_path / "step-summary.md"
    with FakeSpeechServer(KEY) as fake:
        _catalogue(tmp_path, fake.url, [None, None, None])
        job = yaml.safe_load((tmp_path / "job1.yaml").read_text())
        job["voice"]["api_key_env"] = "OTHER_KEY"  # another account, whose key the server refuses
        (tmp_path / "job1.yaml").write_text(yaml.safe_dump(job), encoding="utf-8")
        env = {**ENV, "OTHER_KEY": "sk-wrong-000000000000000000000000", "GITHUB_STEP_SUMMARY": str(summary)}
        ran = run_cli("run", "job0.yaml", "job1.yaml", "job2.yaml", "--junit", "junit.xml", "--report", "cat.json",
                      cwd=tmp_path, env=env)  # fmt: skip
    assert ran.returncode == 3, ran.stderr  # the provider refused book 1's key: the worst code of the three
    assert "job1.yaml" in ran.stderr.splitlines()[-1] and "Traceback" not in ran.stderr
    report = json.loads((tmp_path / "cat.json").read_text())
    assert [b["exit_code"] for b in report["books"]] == [0, 3, 0]
    assert report["catalogue"] is None and len(report["accounts"]) == 2
    assert "API key" in report["books"][1]["message"]
    assert json.loads((tmp_path / "out1" / "report.json").read_text())["exit_code"] == 3
    assert (tmp_path / "out0" / "chapters" / "01 Part 1.mp3").is_file()
    assert (tmp_path / "out2" / "chapters" / "02 Part 2.mp3").is_file()

    suites = ET.parse(tmp_path / "junit.xml").getroot().findall("testsuite")
    assert [s.get("name") for s in suites] == ["Book 0", "Book 1", "Book 2"]
    assert [s.get("failures") for s in suites] == ["0", "2", "0"]

    text = summary.read_text()
    rows = [line for line in text.splitlines() if line.startswith(("| Book 0", "| Book 1", "| Book 2"))]
    assert len(rows) == 3 and "exit 3" in rows[1] and "| done |" in rows[0]
    assert "### Failures" in text and "sk-wrong" not in text and KEY not in text
    html = MarkdownIt("commonmark").enable("table").render(text)  # as GitHub renders the step summary
    body = html.split("<tbody>")[1].split("</tbody>")[0]
    assert body.count("<tr>") == 3 and "<code>job1.yaml</code>" in body and "<h3>Failures</h3>" in html
    for written in (tmp_path / "cat.json", tmp_path / "junit.xml", tmp_path / "out1" / "report.json"):
        assert "sk-wrong" not in written.read_text() and KEY not in written.read_text()


def test_a_catalogue_that_cannot_finish_is_refused_before_anything_is_sent(tmp_path):
    with FakeSpeechServer(KEY) as fake:
        catalogue = _catalogue(tmp_path, fake.url, [None, None], budget_usd=0.001)
        over = run_cli("run", str(catalogue), cwd=tmp_path, env=ENV)
        assert over.returncode == 4 and "over the catalogue's budget of $0.00" in over.stderr
        assert json.loads((tmp_path / "catalogue-report.json").read_text())["exit_code"] == 4

        catalogue.write_text("jobs: [job0.yaml, 'missing/*.yaml']\nconcurency: 3\n", encoding="utf-8")
        (tmp_path / "job1.yaml").write_text("sources: [book1.md]\noutput: {dir: out0}\nvoice: {speed: 9}\n")
        bad = run_cli("run", str(catalogue), "job1.yaml", cwd=tmp_path, env=ENV)
        assert bad.returncode == 2 and "Traceback" not in bad.stderr
        lines = bad.stderr.splitlines()
        assert any("job1.yaml:3: voice.speed:" in line for line in lines), lines

        named = run_cli("run", str(catalogue), cwd=tmp_path, env=ENV)
        lines = named.stderr.splitlines()
        assert named.returncode == 2
        assert any("catalogue.yaml:1: jobs[1]: no job file matches 'missing/*.yaml'" in line for line in lines)
        assert any("catalogue.yaml:2: concurency: unknown key" in line for line in lines), lines

        (tmp_path / "job1.yaml").write_text("sources: [book1.md]\noutput: {dir: out0}\n")
        catalogue.write_text("jobs: [job0.yaml, job1.yaml]\n", encoding="utf-8")
        same = run_cli("run", str(catalogue), cwd=tmp_path, env=ENV)
        assert same.returncode == 2 and "output.dir" in same.stderr and "give each book its own" in same.stderr
        records = fake.records
    assert records == []  # nothing was sent for any of them


def test_nightly_reruns_request_only_what_changed_and_rebuild_identical_manifests(tmp_path):
    with FakeSpeechServer(KEY) as fake:
        catalogue = _catalogue(tmp_path, fake.url, [None, None, None], concurrency=3)
        assert run_cli("run", str(catalogue), cwd=tmp_path, env=ENV).returncode == 0
        first = {n: (tmp_path / f"out{n}" / "manifest.json").read_bytes() for n in range(3)}

        _book(tmp_path, 1, edit="quietly")  # one word, in one book
        gate = run_cli("diff", "job1.yaml", "--json", "--check", cwd=tmp_path)
        assert gate.returncode == 1
        whole = run_cli("diff", "catalogue.yaml", "--json", "--check", cwd=tmp_path)
        assert whole.returncode == 1 and [b["requests"] for b in json.loads(whole.stdout)["books"]] == [0, 1, 0]
        [chapter] = json.loads(gate.stdout)["chapters"]
        assert [c["kind"] for c in chapter["changes"]] == ["changed"] and "quietly" in chapter["changes"][0]["text"]
        sent = len(fake.records)
        again = run_cli("run", str(catalogue), cwd=tmp_path, env=ENV)
        assert again.returncode == 0, again.stderr
        assert [r.input for r in fake.records[sent:]] == [t for t in _take_texts(tmp_path / "out1") if "quietly" in t]
        report = json.loads((tmp_path / "catalogue-report.json").read_text())
        assert [b["requests"] for b in report["books"]] == [0, 1, 0]
        assert report["books"][1]["changes"] == {"changed": 1} and report["books"][0]["changes"] == {}
        assert [b["files_encoded"] for b in report["books"]] == [0, 1, 0]
        assert run_cli("diff", "job1.yaml", "--check", cwd=tmp_path).returncode == 0
        assert run_cli("diff", "catalogue.yaml", "--check", cwd=tmp_path).returncode == 0

        # the same sources, settings and cache give byte-identical manifests: built twice from nothing but the cache
        # (a first build differs from these only in its chunks' run history: "synthesized", attempts)
        _book(tmp_path, 1)
        sent = len(fake.records)
        rebuilt = []
        for _ in range(2):
            for n in range(3):
                shutil.rmtree(tmp_path / f"out{n}")
            assert run_cli("run", str(catalogue), cwd=tmp_path, env=ENV).returncode == 0
            rebuilt.append({n: (tmp_path / f"out{n}" / "manifest.json").read_bytes() for n in range(3)})
        assert len(fake.records) == sent
    assert rebuilt[0] == rebuilt[1]
    history = ('"status": "synthesized"', '"attempts": 1', '"status": "cached"', '"attempts": 0')
    for n in range(3):
        assert _without(first[n], history) == _without(rebuilt[0][n], history)


def _without(manifest: bytes, lines: tuple[str, ...]) -> list[str]:
    return [line for line in manifest.decode().splitlines() if line.strip().rstrip(",") not in lines]


def test_a_take_two_books_share_is_requested_once(tmp_path):
    # the same voice reads the same words in every book (a series' front matter, a heading): one request for all
    shared = "A note from the publisher, the same in every book of the series."
    with FakeSpeechServer(KEY, Faults(latency=0.2)) as fake:
        catalogue = _catalogue(tmp_path, fake.url, [None, None, None], concurrency=6)
        for n in range(3):
            book = tmp_path / f"book{n}.md"
            book.write_text(f"# Front\n\n{shared}\n\n" + book.read_text(encoding="utf-8"), encoding="utf-8")
        done = run_cli("run", str(catalogue), cwd=tmp_path, env=ENV)
        said = Counter(r.input for r in fake.records)
    assert done.returncode == 0, done.stderr
    assert sum(n for text, n in said.items() if shared in text) == 1 and max(said.values()) == 1
    for n in range(3):
        chunks = json.loads((tmp_path / f"out{n}" / "manifest.json").read_text())["chunks"]
        assert {c["status"] for c in chunks if c["text"] == shared} <= {"synthesized", "cached"}
    report = json.loads((tmp_path / "catalogue-report.json").read_text())
    assert sum(b["requests"] for b in report["books"]) == len(said)
