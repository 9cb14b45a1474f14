from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parent.parent


def run_cli(*args: str, cwd: Path | None = None, env: dict[str, str] | None = None, timeout: float = 300):
    """The real CLI in a real process, as a user runs it."""
    full_env = {**os.environ, **(env or {})}
    if "OPENAI_API_KEY" not in (env or {}):
        full_env.pop("OPENAI_API_KEY", None)  # a developer's real key never reaches a test
    return subprocess.run(
        [sys.executable, "-m", "narrator", *args],
        cwd=cwd,
        env=full_env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def write_job(folder: Path, spec: dict | str, name: str = "job.yaml") -> Path:
    path = folder / name
    text = textwrap.dedent(spec) if isinstance(spec, str) else yaml.safe_dump(spec, sort_keys=False)
    path.write_text(text, encoding="utf-8")
    return path


@pytest.fixture
def cli():
    return run_cli
