from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from narrator.text.chunker import Limits, chunk_chapters, split_text
from narrator.text.document import Block, Chapter
from narrator.text.tokens import count_tokens, encoding
from tests.helpers import chapter_text, join_chunks

# text with everything a splitter can trip on: sentence and clause marks, CJK, combining marks, emoji,
# runs of spaces and newlines, and long runs without any break
alphabet = st.sampled_from(
    [*list("abcdefghij ABC  .,;:!?\"'()-—–\n"), "中", "文", "。", "、", "é", "é", "👍", "x" * 40, " word"]
)
texts = st.lists(alphabet, min_size=1, max_size=400).map("".join)
limits = st.builds(Limits, max_chars=st.integers(8, 300), max_tokens=st.integers(4, 80))


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(texts, limits)
def test_pieces_join_back_and_stay_within_limits(text, lim):
    pieces = split_text(text, lim)
    assert "".join(pieces) == text
    for piece in pieces:
        spoken = piece.strip()
        # a single character (grapheme) over the limit cannot be split: the only allowed exception
        if len(spoken) > 2:
            assert len(spoken) <= lim.max_chars
            assert count_tokens(spoken) <= lim.max_tokens


@settings(max_examples=100, deadline=None)
@given(st.lists(texts.map(str.strip).filter(bool), min_size=1, max_size=8), limits)
def test_chapter_chunks_join_to_the_prepared_text(paragraphs, lim):
    chapter = Chapter("T", tuple(Block("paragraph", p) for p in paragraphs))
    chunks = chunk_chapters([chapter], lim)
    assert join_chunks(chunks) == chapter_text(chapter)
    order = [(c.block, c.piece) for c in chunks]
    assert order == sorted(order)  # never reordered


def test_ten_thousand_word_sentence_without_punctuation():
    text = " ".join(["lighthouse"] * 10_000)
    pieces = split_text(text, Limits(4096, 2000))
    assert "".join(pieces) == text
    assert all(len(p.strip()) <= 4096 and count_tokens(p.strip()) <= 2000 for p in pieces)
    assert len(pieces) == -(-len(text) // 4096)  # as few pieces as the character limit allows


def test_token_limit_binds_first_for_dense_scripts():
    text = "".join(chr(0x4E00 + (i * 37) % 20000) for i in range(4000))  # 4000 varied CJK characters
    pieces = split_text(text, Limits(4096, 2000))
    assert "".join(pieces) == text
    assert len(pieces) >= 2 and all(count_tokens(p) <= 2000 for p in pieces)


def test_sentences_are_preferred_to_words():
    text = "One two three. Four five six. Seven eight nine."
    assert split_text(text, Limits(32, 100)) == ["One two three. Four five six. ", "Seven eight nine."]


def test_an_edit_changes_only_the_chunks_of_its_paragraph():
    paragraphs = [f"Paragraph {i}. " + "Some words here, and more words there. " * (5 + i % 7) for i in range(30)]
    before = chunk_chapters([Chapter("T", tuple(Block("paragraph", p.strip()) for p in paragraphs))], Limits(120, 60))
    paragraphs[12] = paragraphs[12].replace("Some words", "Some other words", 1)
    after = chunk_chapters([Chapter("T", tuple(Block("paragraph", p.strip()) for p in paragraphs))], Limits(120, 60))
    changed_ids = {c.id for c in after} - {c.id for c in before}
    assert changed_ids and all(c.block == 12 for c in after if c.id in changed_ids)
    assert [c.id for c in before if c.block != 12] == [c.id for c in after if c.block != 12]


def test_gaps_follow_the_structure():
    chapter = Chapter(
        "T",
        (Block("heading", "Title", 1), Block("paragraph", "A. " * 30), Block("paragraph", "B."),
         Block("scene_break"), Block("paragraph", "C.")),
    )  # fmt: skip
    chunks = chunk_chapters([chapter], Limits(40, 100))
    gaps = [c.gap for c in chunks]
    assert gaps[0] == "chapter_start" and gaps[1] == "after_heading"
    assert "chunk" in gaps and gaps[-2:] == ["paragraph", "scene_break"]


def test_duplicate_text_gets_distinct_stable_ids():
    chapter = Chapter("T", (Block("paragraph", "Yes."), Block("paragraph", "No."), Block("paragraph", "Yes.")))
    ids = [c.id for c in chunk_chapters([chapter], Limits(100, 100))]
    assert len(set(ids)) == 3 and ids[2] == ids[0] + "-2"
    assert ids == [c.id for c in chunk_chapters([chapter], Limits(100, 100))]


def test_offline_o200k_matches_tiktoken_ids():
    # ids of o200k_base, as stock tiktoken gives them
    assert encoding().encode("Hello, world!") == [13225, 11, 2375, 0]
    assert encoding().name == "o200k_base"
