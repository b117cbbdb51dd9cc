"""Tokenizer-free token estimates.

Kiro reports no input token count we can trust before the response ends, and Claude's tokenizer
is not public, so the gateway estimates. Two users:

* the response side estimates output tokens from the text and tool-call JSON it emitted
  (``estimate_text_tokens``);
* ``POST /v1/messages/count_tokens`` and the ``ResponsePlan`` need an estimate for a whole
  request (``count_input_tokens``). The system prompt and the tool definitions are most of a
  coding agent's request and repeat on every turn, so their part can be remembered by digest
  in an ``EstimateCache`` the caller owns.

Method (documented with its measured error in ``docs/conversion.md``): the text is split into
runs with one regular expression, and each run is charged by its class, approximating how a BPE
vocabulary trained mostly on English and code splits text:

* a run of ASCII letters: one token per started 8 characters (common words are one token, long
  identifiers and random strings several);
* a run of digits: one token per started 3 digits (BPE vocabularies hold numbers up to 3 digits);
* a run of CJK ideographs, kana or hangul syllables: 5 tokens per 4 characters, rounded up
  (Claude's vocabulary holds few multi-character CJK tokens);
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

import hashlib
import json
import re
from collections.abc import Sequence

from .._bounded_cache import BoundedCache
from ._model import (
    ContentBlock,
    ImageBlock,
    Request,
    TextBlock,
    ThinkingBlock,
    ToolResultBlock,
    ToolUseBlock,
)
from ._schema_cache import schema_keys as _schema_keys

__all__ = ["estimate_text_tokens", "count_input_tokens", "count_added_tokens", "EstimateCache"]

_CJK = "\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uac00-\ud7af\uf900-\ufaff"
_NON_ASCII = re.compile(r"[^\x00-\x7f]+")
_CJK_CHAR = re.compile(f"[{_CJK}]")
_CJK_QUAD = re.compile(f"[{_CJK}]{{1,4}}")
_OTHER_LETTERS = re.compile(f"(?:(?![{_CJK}])[^\\W\\d_]){{1,3}}")
_OTHER = re.compile(r"[^\w\s]")


def _class_table() -> bytes:
    table = bytearray(b"x" * 256)
    for c in range(256):
        ch = chr(c)
        if ch.isascii() and ch.isalpha():
            table[c] = ord("a")
        elif ch.isascii() and ch.isdigit():
            table[c] = ord("0")
        elif 0x21 <= c <= 0x7E:
            table[c] = ord(".")
        elif ch in " \t\r\f\v":
            table[c] = ord(" ")
    # "?" is also what encode("ascii", "replace") puts for every non-ASCII character, so it
    # is in no class here; real question marks are counted separately.
    table[ord("?")] = ord("x")
    return bytes(table)


_CLASS = _class_table()
# One table per class: that class's byte -> "1", everything else -> "0"; the result is
# read as a binary number, one bit per character (first character = most significant bit).
_ONLY = {c: bytes(ord("1") if b == ord(c) else ord("0") for b in range(256)) for c in "a0. "}


def _window(mask: int, n: int) -> int:
    """Bits of the characters that end a window of ``n`` class characters (run offset >= n-1)."""
    out = mask
    width = 1
    while width * 2 <= n:  # doubling: each step checks twice as many predecessors
        out &= out >> width
        width *= 2
    for j in range(width, n):
        out &= mask >> j
    return out


def _chunks(classes: bytes, cls: str, size: int, *, first: int = 1) -> int:
    """Tokens of one class: each run costs ``first`` for its start plus one more per
    ``size`` characters, counted with big-integer bit operations instead of a loop per run.

    Exact per run for runs up to ``2 * size`` characters; beyond that the extra characters
    are pooled over the text (still monotone: appending characters only adds bits)."""
    mask = int(classes.translate(_ONLY[cls]), 2)
    if not mask:
        return 0
    runs = mask.bit_count() - (mask & (mask >> 1)).bit_count()
    # With a start token, the next token starts at run offset ``size``; without one (spaces)
    # the first token is complete at offset ``size - 1``.
    at = size if first else size - 1
    exact = _window(mask, at + 1)  # offset >= at
    beyond = exact & (mask >> (at + 1))  # offset >= at + 1
    return first * runs + (exact & ~beyond).bit_count() + beyond.bit_count() // size


def estimate_text_tokens(text: str) -> int:
    """Estimate how many Claude tokens ``text`` takes, without a tokenizer.

    Deterministic, linear in ``len(text)`` (a few C-level passes, about 1 ms per 100 KB), and
    monotone (appending text never lowers the estimate). Empty text is 0 tokens.
    """
    if not text:
        return 0
    classes = text.encode("ascii", "replace").translate(_CLASS)
    total = (
        _chunks(classes, "a", 8)
        + _chunks(classes, "0", 3)
        + _chunks(classes, ".", 2)
        + _chunks(classes, " ", 4, first=0)
        + text.count("\n")
        + text.count("?")
    )
    if not text.isascii():
        rest = " ".join(_NON_ASCII.findall(text))
        # 5 tokens per 4 CJK characters = one per character + one per started group of 4.
        total += len(_CJK_CHAR.findall(rest)) + len(_CJK_QUAD.findall(rest))
        total += len(_OTHER_LETTERS.findall(rest)) + len(_OTHER.findall(rest))
    return total


# -- whole requests -------------------------------------------------------------------------------
# Fixed costs, fitted to the official counts in
# tests/fixtures/conversion/token_estimator_vectors.json (see docs/conversion.md for the measured
# error): the request framing, each message's role header,
# the system prompt header, the tool-use preamble Anthropic adds once when tools are offered,
# each tool definition's framing, and one image.
_REQUEST_BASE = 3
_PER_MESSAGE = 3
_PER_SYSTEM = 3
_TOOLS_PREAMBLE = 240
_PER_TOOL = 100
_PER_TOOL_USE = 5
_PER_TOOL_RESULT = 5
_IMAGE_TOKENS = 1_510
_IMAGE_MAX_TOKENS = 1_600


def _json_text(value: object) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(", ", ": "), default=str)


def _image_tokens(image: ImageBlock) -> int:
    # The official count of a tiny image is about 1,500 tokens, and the documented formula
    # (width * height / 750) caps near 1,600 for the largest images Claude reads: a flat
    # estimate is within about 7% for every image size.
    if image.width and image.height:
        return max(_IMAGE_TOKENS, min(_IMAGE_MAX_TOKENS, image.width * image.height // 750))
    return _IMAGE_TOKENS


def _block(block: ContentBlock, texts: list[str]) -> int:
    """Collect the block's text into ``texts``; return its fixed cost."""
    if isinstance(block, TextBlock):
        texts.append(block.text)
    elif isinstance(block, ImageBlock):
        return _image_tokens(block)
    elif isinstance(block, ToolUseBlock):
        texts.append(block.name)
        texts.append(_json_text(block.input))
        return _PER_TOOL_USE
    elif isinstance(block, ToolResultBlock):
        return _PER_TOOL_RESULT + sum(_block(item, texts) for item in block.content)
    elif isinstance(block, ThinkingBlock):
        texts.append(block.thinking)
    return 0  # redacted thinking is not re-read as tokens


def count_added_tokens(texts: list[str], *, messages: int) -> int:
    """The estimate of ``texts`` and of ``messages`` more messages' framing, which a request's
    conversion adds to it."""
    return _PER_MESSAGE * messages + estimate_text_tokens("\0".join(texts))


class EstimateCache(BoundedCache[int]):
    """The estimate of a system prompt plus tool definitions, remembered by their digest.

    Pure memoisation (a hit returns exactly what the estimate would), bounded to
    ``max_entries`` (the oldest entry goes first). The service that owns it hands it to every
    estimate; sharing it between threads is safe, at worst an entry is computed twice.
    """

    __slots__ = ()

    def __init__(self, max_entries: int = 256) -> None:
        super().__init__(max_entries)


def _prompt_texts(request: Request, description_limit: int | None) -> tuple[int, list[str]]:
    """The fixed cost and the texts of the system prompt and the tool definitions."""
    texts = [block.text for block in request.system]
    fixed = _PER_SYSTEM * len(texts)
    if request.tools:
        fixed += _TOOLS_PREAMBLE + _PER_TOOL * len(request.tools)
        for tool in request.tools:
            texts.append(tool.name)
            texts.append(tool.description[:description_limit])
            # An absent schema is an empty piece (NUL costs nothing), so the pieces stay in step.
            texts.append(_json_text(tool.input_schema) if tool.input_schema is not None else "")
    return fixed, texts


def _prompt_key(request: Request, description_limit: int | None, keys: Sequence[bytes | None]) -> bytes | None:
    """The digest of everything ``_prompt_texts`` reads, or None when a schema has no key.

    Each schema is fed as its ``schema_key`` (its compact JSON text, which the converter has at
    hand), not as the spaced text the estimate reads: equal keys mean equal schemas, so equal
    estimates. The pieces' count and lengths come first, so no two different prompts feed the
    same bytes; SHA-256 because it is the fastest of hashlib's digests where the CPU has instructions for it.
    """
    tools = request.tools
    if len(keys) != len(tools):
        return None
    shape = f"{len(request.system)},{len(tools)},{description_limit}"
    pieces = [shape.encode()]
    for block in request.system:
        pieces.append(block.text.encode("utf-8", "surrogatepass"))
    for tool, key in zip(tools, keys):
        if key is None and tool.input_schema is not None:
            return None
        pieces.append(tool.name.encode("utf-8", "surrogatepass"))
        pieces.append(tool.description[:description_limit].encode("utf-8", "surrogatepass"))
        pieces.append(key or b"")
    # One hash call (not two per piece) over: the count of pieces, each one's length, the pieces.
    head = len(pieces).to_bytes(8, "little") + b"".join(len(piece).to_bytes(8, "little") for piece in pieces)
    return hashlib.sha256(head + b"".join(pieces)).digest()


def _prompt_tokens(
    request: Request, cache: EstimateCache | None, description_limit: int | None, keys: Sequence[bytes | None] | None
) -> int:
    if cache is None or not (request.system or request.tools):
        fixed, texts = _prompt_texts(request, description_limit)
        return fixed + estimate_text_tokens("\0".join(texts))
    key = _prompt_key(request, description_limit, _schema_keys(request.tools) if keys is None else keys)
    tokens = cache.get(key) if key is not None else None
    if tokens is None:
        fixed, texts = _prompt_texts(request, description_limit)
        tokens = fixed + estimate_text_tokens("\0".join(texts))
        if key is not None:
            cache.put(key, tokens)
    return tokens


def count_input_tokens(
    request: Request,
    *,
    cache: EstimateCache | None = None,
    description_limit: int | None = None,
    messages: int | None = None,
    schema_keys: Sequence[bytes | None] | None = None,
) -> int:
    """Estimate the input tokens of ``request`` (``POST /v1/messages/count_tokens``).

    The text estimate of every system block, message block, tool use, tool result and tool
    definition, plus fitted fixed costs for framing, tool definitions and images. Server
    tools count like any other tool definition (the official count includes them). The texts
    of the system prompt with the tools, and of the messages, are each estimated in one pass
    (joined with NUL, which is in no token class and splits runs). With ``cache``, the system
    prompt and tool definitions are estimated once per distinct digest of them.

    The converter counts the request as Kiro's model reads it: tool descriptions cut at
    ``description_limit`` characters, and ``messages`` messages (after merging and the
    system pair) instead of the request's own. ``schema_keys``: the converter's ``schema_key``
    of each tool's schema (computed here when not given).
    """
    texts: list[str] = []
    total = _REQUEST_BASE + _prompt_tokens(request, cache, description_limit, schema_keys)
    for message in request.messages:
        total += _PER_MESSAGE + sum(_block(b, texts) for b in message.content)
    if messages is not None:
        total += _PER_MESSAGE * (messages - len(request.messages))
    return max(1, total + estimate_text_tokens("\0".join(texts)))
