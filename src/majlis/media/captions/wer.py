"""Word error rate: how far a transcript is from what was said, for benches and tests.

Words are compared after normalisation that forgives what captions do not need to get
right: case, punctuation, hyphenation ("round-fog" is two words), curly apostrophes, and
Arabic short-vowel marks and tatweel, which writers add or leave out freely. Numbers are not
spelled out ("10" and "ten" differ), so references should avoid digits.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

__all__ = ["WordErrors", "normalize", "word_error_rate", "word_errors"]

_WORD = re.compile(r"\w+(?:'\w+)*")
_ARABIC_MARKS = re.compile("[\u064b-\u0652\u0670\u0640]")  # harakat, dagger alif, tatweel
_Cell = tuple[int, int, int, int]


@dataclass(frozen=True, slots=True)
class WordErrors:
    substitutions: int
    deletions: int
    insertions: int
    reference_words: int

    @property
    def errors(self) -> int:
        return self.substitutions + self.deletions + self.insertions

    @property
    def rate(self) -> float:
        """Errors per reference word: 0 is perfect; above 1 when the hypothesis rambles."""
        return self.errors / self.reference_words


def normalize(text: str) -> list[str]:
    """The words of `text`, compared as captions are read."""
    text = _ARABIC_MARKS.sub("", text.casefold().replace("\u2019", "'"))
    return _WORD.findall(text.replace("_", " "))


def word_errors(reference: str, hypothesis: str) -> WordErrors:
    """The fewest substitutions, deletions and insertions turning reference into hypothesis."""
    ref, hyp = normalize(reference), normalize(hypothesis)
    if not ref:
        raise ValueError("the reference has no words: a word error rate needs some")
    # One row of the edit-distance table at a time; each cell is (cost, subs, dels, ins),
    # so the cheapest path's kinds of error come out with its cost.
    row: list[_Cell] = [(j, 0, 0, j) for j in range(len(hyp) + 1)]
    for i, ref_word in enumerate(ref, start=1):
        new: list[_Cell] = [(i, 0, i, 0)]
        for j, hyp_word in enumerate(hyp, start=1):
            c, s, d, n = row[j - 1]
            diagonal = (c, s, d, n) if ref_word == hyp_word else (c + 1, s + 1, d, n)
            c, s, d, n = row[j]
            deletion = (c + 1, s, d + 1, n)
            c, s, d, n = new[j - 1]
            insertion = (c + 1, s, d, n + 1)
            new.append(min(diagonal, deletion, insertion))
        row = new
    _, substitutions, deletions, insertions = row[-1]
    return WordErrors(substitutions, deletions, insertions, len(ref))


def word_error_rate(reference: str, hypothesis: str) -> float:
    return word_errors(reference, hypothesis).rate
