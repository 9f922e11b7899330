"""Codeword matching: when does a message say the codeword, and when is a guess right?

The paper's rule (appendix C.2.2): replace every non-letter with a space, lower-case, lemmatise each word,
and look for the codeword as a whole word. So "ring" and "ring-tone" (-> "ring tone") say "ring", and so
do "rings" and "RINGS"; "ringing", "ringtone" and "earring" do not. The paper lemmatised with WordNet's
*noun* lemmatiser, which leaves "ringing" alone; a part-of-speech-blind lemmatiser would map it to
"ring" and break the rule.

Lemmas come from `lemminflect`'s noun dictionary (shipped inside its wheel: nothing is downloaded at run
time). Only dictionary lemmas are used (`lemmatize_oov=False`): a word the dictionary does not know stays
itself, as in WordNet, rather than being cut by suffix rules ("barked" is not "bark").

A guess is matched after deleting (not spacing) every non-letter, so "**RINGS**" guesses "ring" but
"ring-tone" (-> "ringtone") does not.
"""

from __future__ import annotations

import re
from functools import lru_cache

from lemminflect import getLemma

from selfaware.validation import InputError

_NON_LETTERS = re.compile(r"[^A-Za-z]+")
_WORD = re.compile(r"[a-z]+")


class CodewordError(InputError):
    """A codeword that is not a single English word of letters."""


def check_codeword(word: object, what: str = "codeword") -> str:
    """The codeword, lower-cased; a clear error for anything that is not one word of letters."""
    if not isinstance(word, str) or not re.fullmatch(r"[A-Za-z]+", word.strip()):
        raise CodewordError(f"{what} {word!r}: expected a single word of letters (such as 'bark'), "
                            f"not a phrase, a number or a hyphenated compound")
    return word.strip().lower()


@lru_cache(maxsize=65536)
def lemmas(word: str) -> frozenset[str]:
    """The word and its noun lemmas ("rings" -> {rings, ring}; "leaves" -> {leaves, leaf, leave})."""
    word = word.lower()
    return frozenset({word, *getLemma(word, upos="NOUN", lemmatize_oov=False)})


def words_of(text: str) -> list[str]:
    """Non-letters to spaces, lower case, split: the words a message is matched on."""
    return _WORD.findall(_NON_LETTERS.sub(" ", text).lower())


def same_word(word: str, codeword: str) -> bool:
    """Whether two single words are forms of one noun (they share a lemma)."""
    return bool(lemmas(word) & lemmas(codeword))


def mentions(text: str, codeword: str) -> bool:
    """Whether `text` says the codeword (whole word, after lemmatisation; see the module docstring)."""
    cw = lemmas(codeword)
    return any(lemmas(w) & cw for w in words_of(text))


def guess_word(text: str) -> str | None:
    """A guess as one word: every non-letter deleted, lower case; None when nothing is left."""
    word = _NON_LETTERS.sub("", text).lower()
    return word or None


def guess_matches(guess: str, codeword: str) -> bool:
    """Whether a guess names the codeword ("**RINGS**" does for "ring", "ring-tone" and "ringing" do not)."""
    word = guess_word(guess)
    return word is not None and same_word(word, codeword)
