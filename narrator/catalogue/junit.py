"""``run --junit FILE``: the run as JUnit XML, which CI systems display: a test suite per book, a test case per
chapter. A chapter fails for a take that failed or was not made, a file of it that fails the mastering preset's
QA, a take whose editor's decision went stale or rejected it, or a take that still fails proof-listening. Written
from the run's own manifest and report."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Sequence
from pathlib import Path

from ..core.audio import atomic_write
from ..core.records import Manifest, Report


def chapter_failures(manifest: Manifest, report: Report) -> dict[int, list[tuple[str, str]]]:
    """Chapter number -> (type, message) of each failure in it."""
    failures: dict[int, list[tuple[str, str]]] = {c.number: [] for c in manifest.chapters}
    for chunk in manifest.chunks:
        if chunk.status in ("failed", "pending"):
            what = chunk.error or ("not made: " + report.message if chunk.status == "pending" else "failed")
            failures[chunk.chapter].append(("take", f"chunk {chunk.id}: {what}"))
    width = max(2, len(str(len(manifest.chapters))))  # as chapter files are numbered
    stems = {c.number: f"{c.number:0{width}d} " for c in manifest.chapters}
    qa_section = report.qa
    for qa in qa_section.files if qa_section else []:
        if not qa.passed and qa_section is not None:
            broken = ", ".join(rule for rule, held in qa.rules.items() if not held)
            number = next((n for n, stem in stems.items() if qa.file.startswith(stem)), None)
            for n in [number] if number is not None else list(failures):  # a whole-book file: every chapter
                failures[n].append(("qa", f"{qa.file} fails {qa_section.preset}: {broken}"))
    for take in manifest.takes or []:
        if take.review in ("stale", "rejected"):
            failures[take.chapter].append(("review", f"take {take.id} is {take.review} in the review file"))
        if take.proof is not None and take.proof.verdict == "failed":
            heard = f"{take.proof.longest_run} words in a row differ; heard: {take.proof.transcript}"
            failures[take.chapter].append(("proof", f"take {take.id} says something else than its text: {heard}"))
    return failures


def write_junit(path: Path, books: Sequence[tuple[Manifest, Report, str]]) -> None:
    """One test suite per book: its manifest, report and job file."""
    suites = ET.Element("testsuites", name="narrator")
    tests = failed = 0
    seconds = 0.0
    for manifest, report, job in books:
        failures = chapter_failures(manifest, report)
        book_failed = sum(1 for f in failures.values() if f)
        book_seconds = report.timings_seconds.get("total", 0.0)
        suite = ET.SubElement(
            suites,
            "testsuite",
            name=manifest.title,
            tests=str(len(failures)),
            failures=str(book_failed),
            errors="0",
            skipped="0",
            time=f"{book_seconds:.3f}",
        )
        for chapter in manifest.chapters:
            case = ET.SubElement(
                suite,
                "testcase",
                classname=job,
                name=f"{chapter.number}. {chapter.title}",
                time=f"{chapter.duration or 0.0:.3f}",
            )
            for kind, message in failures[chapter.number]:
                ET.SubElement(case, "failure", message=message, type=kind).text = message
        tests, failed, seconds = tests + len(failures), failed + book_failed, max(seconds, book_seconds)
    suites.attrib.update(tests=str(tests), failures=str(failed), errors="0", time=f"{seconds:.3f}")
    ET.indent(suites)
    atomic_write(path, ET.tostring(suites, encoding="utf-8", xml_declaration=True) + b"\n")
