"""Many books in one run (``runner``), and what a CI job reads of it: JUnit XML and a Markdown summary."""
