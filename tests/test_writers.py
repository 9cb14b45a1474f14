import pytest

from narrator.writers import safe_filename


@pytest.mark.parametrize(
    ("title", "expected"),
    [
        ("Chapter 1: The Storm", "Chapter 1 The Storm"),
        ('What? "No" <never> a/b\\c|d*', "What No never a b c d"),
        ("CON", "_CON"),
        ("aux.txt", "_aux.txt"),
        ("Trailing dots...", "Trailing dots"),
        ("   ", "untitled"),
        ("tab\tand\nnewline", "tab and newline"),
        ("Café – naïve", "Café – naïve"),
    ],
)
def test_safe_filename(title, expected):
    assert safe_filename(title) == expected


def test_long_names_are_cut_on_a_character_boundary():
    name = safe_filename("é" * 200)
    assert len(name.encode("utf-8")) <= 100 and name == "é" * 50
