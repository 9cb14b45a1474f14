"""`run --junit FILE`: the run as JUnit XML, checked against the common JUnit schema's required shape (what CI
systems read): a suite per book, a case per chapter, a failure for each take not made, with its message."""

from __future__ import annotations

import xml.etree.ElementTree as ET

import pytest

from devtools.fake_openai import FakeSpeechServer, Faults
from narrator.core import errors
from tests.books import sentence
from tests.conftest import run_cli, write_job

pytestmark = pytest.mark.slow  # each over half a second: `pytest -m 'not slow'` leaves them out

KEY = "sk-test-0123456789abcdefghijklmnop"
TITLES = ["One", "Two", "Three"]


def _check_schema(root: ET.Element) -> None:
    """The attributes the common JUnit XSD (Jenkins/Ant) requires, and counts that add up."""
    assert root.tag == "testsuites"
    for suite in root.iter("testsuite"):
        assert {"name", "tests", "failures", "errors", "time"} <= set(suite.attrib)
        cases = suite.findall("testcase")
        assert int(suite.get("tests")) == len(cases)
        assert int(suite.get("failures")) == sum(1 for c in cases if c.find("failure") is not None)
        float(suite.get("time"))
        for case in cases:
            assert {"name", "classname", "time"} <= set(case.attrib)
            float(case.get("time"))
            for failure in case.findall("failure"):
                assert failure.get("message") and failure.get("type")


def test_a_stopped_run_reads_as_failing_chapters_in_junit(tmp_path):
    chapters = [f"# {t}\n\n{sentence(i, 9)}\n\n{sentence(i + 5, 8)}" for i, t in enumerate(TITLES)]
    (tmp_path / "book.md").write_text("\n\n".join(chapters) + "\n", encoding="utf-8")
    with FakeSpeechServer(KEY, Faults(quota_after=1)) as fake:
        spec = {"sources": ["book.md"], "title": "Suite", "voice": {"provider": "openai", "base_url": fake.url},
                "output": {"dir": "out", "formats": ["mp3"]}, "cache": "cache", "concurrency": 1}  # fmt: skip
        job = write_job(tmp_path, spec)
        stopped = run_cli("run", str(job), "--junit", str(tmp_path / "junit.xml"), env={"OPENAI_API_KEY": KEY})
        assert stopped.returncode == errors.EXIT_FATAL_PROVIDER
        root = ET.parse(tmp_path / "junit.xml").getroot()
        _check_schema(root)
        [suite] = root.findall("testsuite")
        assert suite.get("name") == "Suite" and suite.get("tests") == "3" and suite.get("failures") == "2"
        cases = {c.get("name"): c for c in suite.findall("testcase")}
        assert list(cases) == ["1. One", "2. Two", "3. Three"]
        assert cases["1. One"].find("failure") is None
        failure = cases["2. Two"].find("failure")  # the take the quota stopped, with the API's word for it
        assert failure is not None and failure.get("type") == "take" and "insufficient_quota" in failure.get("message")
        after = cases["3. Three"].find("failure")  # never asked for
        assert after is not None and ": not made: " in after.get("message")

        fake.state.faults = Faults()
        done = run_cli("run", str(job), "--junit", str(tmp_path / "junit.xml"), env={"OPENAI_API_KEY": KEY})
    assert done.returncode == 0, done.stderr
    root = ET.parse(tmp_path / "junit.xml").getroot()
    _check_schema(root)
    assert root.find("testsuite").get("failures") == "0"
