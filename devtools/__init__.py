"""Tools for narrator's own tests, samples and benchmarks: an EPUB builder, a fake OpenAI-compatible speech server
with fault injection, a local Ray cluster, generators of novels and pictures, the schema writer. Not part of narrator:
the wheel holds only ``narrator`` (pyproject's packages.find), and nothing in narrator imports this. Run from the
repository's root (``python -m devtools.fake_openai``); the tests find it through pytest's ``pythonpath``."""
