"""Word error rate, on cases worked out by hand."""

from __future__ import annotations

import pytest

from majlis.media.captions.wer import WordErrors, normalize, word_error_rate, word_errors


def test_the_same_words_are_no_error() -> None:
    assert word_errors("Live captions, for everyone!", "live captions for everyone") == (
        WordErrors(0, 0, 0, 4)
    )


@pytest.mark.parametrize(
    ("hypothesis", "expected"),
    [
        ("the quick brown cat", WordErrors(1, 0, 0, 4)),  # fox -> cat
        ("the brown fox", WordErrors(0, 1, 0, 4)),  # quick dropped
        ("the very quick brown fox", WordErrors(0, 0, 1, 4)),  # very added
        ("quick brown fox jumps", WordErrors(0, 1, 1, 4)),  # the dropped, jumps added
        ("", WordErrors(0, 4, 0, 4)),
    ],
)
def test_each_kind_of_error_is_counted(hypothesis: str, expected: WordErrors) -> None:
    assert word_errors("the quick brown fox", hypothesis) == expected


def test_the_rate_is_errors_per_reference_word() -> None:
    assert word_error_rate("the quick brown fox", "the quick round-fog stump") == 0.75
    # an insertion-heavy hypothesis can score above one
    assert word_error_rate("hello", "hello hello hello") == 2.0


def test_normalisation_forgives_case_punctuation_hyphens_and_apostrophes() -> None:
    assert normalize("Don’t STOP — round-fog, “now”.") == ["don't", "stop", "round", "fog", "now"]


def test_arabic_short_vowels_and_tatweel_do_not_count() -> None:
    assert normalize("مَرْحَباً بِكُمْ") == normalize("مرحبا بكم") == ["مرحبا", "بكم"]
    assert word_error_rate("أهلاً وسهلاً", "أهلا وســهلا") == 0.0


def test_an_empty_reference_is_refused() -> None:
    with pytest.raises(ValueError, match="reference"):
        word_error_rate(" ... ", "anything")
