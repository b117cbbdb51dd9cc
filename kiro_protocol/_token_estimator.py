"""Tokenizer-free token estimates.

Kiro reports no input token count we can trust before the response ends, and Claude's tokenizer
is not public, so the gateway estimates. Two users:

* the response side estimates output tokens from the text and tool-call JSON it emitted
  (``estimate_text_tokens``);
* ``POST /v1/messages/count_tokens`` and the ``ResponsePlan`` need an estimate for a whole
  request (``count_input_tokens``).

Method (documented with its measured error in ``docs/conversion.md``): the text is split into
runs with one regular expression, and each run is charged by its class, approximating how a BPE
vocabulary trained mostly on English and code splits text:

* a run of ASCII letters: one token per started 6 characters (common words are one token, long
  identifiers and random strings several);
* a run of digits: one token per started 3 digits (BPE vocabularies hold numbers up to 3 digits);
* a CJK ideograph, kana or hangul syllable: one token each (measured about 1.1 per character);
* a run of other letters (Cyrillic, Greek, accented Latin, ...): one token per started 3
  characters;
* a run of ASCII punctuation: one token per started 2 characters (``{"``, ``":``, ``),`` are
  single tokens in practice);
* any other character (full-width punctuation, emoji, symbols): one token each;
* whitespace: a newline costs one token, spaces cost one per full 4 in a run (a single space is
  absorbed by the next word).

Every charge is additive over runs and non-decreasing in the run length, so the estimate is
monotone: a prefix of a text never has a larger estimate than the text itself.
"""

from __future__ import annotations

import re

__all__ = ["estimate_text_tokens"]

# One alternative per run class; group names select the charge. The CJK class covers CJK
# unified ideographs (+ extension A, compatibility), kana and hangul syllables.
_CJK = "\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uac00-\ud7af\uf900-\ufaff"
_RUN = re.compile(
    rf"(?P<ascii>[A-Za-z]+)"
    rf"|(?P<digits>[0-9]+)"
    rf"|(?P<cjk>[{_CJK}])"
    rf"|(?P<letters>(?:(?![{_CJK}])[^\W\d_])+)"
    rf"|(?P<punct>[!-/:-@\[-`{{-~]+)"
    rf"|(?P<space>\s+)"
    rf"|(?P<other>.)",
    re.DOTALL,
)


def _ceil_div(n: int, d: int) -> int:
    return -(-n // d)


def estimate_text_tokens(text: str) -> int:
    """Estimate how many Claude tokens ``text`` takes, without a tokenizer.

    Deterministic, linear in ``len(text)``, and monotone (appending text never lowers the
    estimate). Empty text is 0 tokens.
    """
    if not text:
        return 0
    total = 0
    for match in _RUN.finditer(text):
        kind = match.lastgroup
        length = match.end() - match.start()
        if kind == "ascii":
            total += _ceil_div(length, 6)
        elif kind == "digits":
            total += _ceil_div(length, 3)
        elif kind == "cjk" or kind == "other":
            total += 1
        elif kind == "letters":
            total += _ceil_div(length, 3)
        elif kind == "punct":
            total += _ceil_div(length, 2)
        else:  # whitespace
            run = match.group()
            newlines = run.count("\n")
            total += newlines + (length - newlines) // 4
    return total
