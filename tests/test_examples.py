"""The CI examples in examples/ are files someone can copy: the workflow is valid YAML with the steps the README
promises, and the shell script really runs a catalogue, then finds nothing to do."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tests.conftest import REPO


def test_the_github_workflow_has_the_promised_steps():
    workflow = yaml.safe_load((REPO / "examples" / "nightly-catalogue.yml").read_text(encoding="utf-8"))
    assert workflow[True]["schedule"][0]["cron"]  # YAML 1.1 reads the key `on` as True, as PyYAML does
    steps = workflow["jobs"]["build"]["steps"]
    uses = [s.get("uses", "") for s in steps]
    runs = " ".join(s.get("run", "") for s in steps)
    assert any(u.startswith("actions/cache/restore") for u in uses)
    assert any(u.startswith("actions/cache/save") for u in uses)
    assert any(u.startswith("actions/upload-artifact") for u in uses)
    assert 'narrator diff "$CATALOGUE" --check' in runs and 'narrator run "$CATALOGUE"' in runs
    assert "secrets.RELAY_API_KEY" in (REPO / "examples" / "nightly-catalogue.yml").read_text()


@pytest.mark.slow
def test_the_shell_example_runs_a_catalogue_then_has_nothing_to_do(tmp_path):
    (tmp_path / "pipelines").mkdir()
    (tmp_path / "book.md").write_text("# One\n\nThe lamp was lit at dusk.\n", encoding="utf-8")
    (tmp_path / "pipelines" / "book.yaml").write_text(
        "sources: [../book.md]\noutput: {dir: ../out/book, formats: [mp3]}\ncache: ../cache\n", encoding="utf-8"
    )
    (tmp_path / "pipelines" / "catalogue.yaml").write_text("jobs: [book.yaml]\n", encoding="utf-8")
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    script = str(REPO / "examples" / "nightly-catalogue.sh")
    first = subprocess.run(["sh", script], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert first.returncode == 0, first.stderr
    assert (tmp_path / "out" / "book" / "chapters" / "01 One.mp3").is_file()
    assert (tmp_path / "catalogue-report.json").is_file() and (tmp_path / "junit.xml").is_file()
    second = subprocess.run(["sh", script], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert second.returncode == 0 and "every book is up to date" in second.stdout
