"""The simulator's words: what it says, and how the text is cut into frames like Kiro cuts it.

Kiro streams a few words per ``assistantResponseEvent`` (1-3 characters for CJK text, see the
real captures in tests/fixtures/upstream/real*.bin), so ``split_text`` cuts the same way, with
sizes drawn from a seeded generator: deterministic for a given seed, irregular like the real
thing. Pure.
"""

from __future__ import annotations

import random
import re

__all__ = [
    "split_text",
    "excerpt",
    "has_cjk",
    "greeting",
    "thinking_frames",
    "reasoning_text",
    "long_frames",
    "UNICODE_FRAMES",
    "UNICODE_TEXT",
]

# Han, kana, Hangul, CJK punctuation and full-width forms: the scripts Kiro streams a few
# characters at a time.
_CJK_CLASS = "\u2e80-\u9fff\uac00-\ud7af\uf900-\ufaff\ufe30-\ufe4f\uff00-\uffef"
_CJK = re.compile(f"[{_CJK_CLASS}]")
# One piece: a CJK character, a word with its trailing spaces, or leading spaces.
_PIECE = re.compile(f"[{_CJK_CLASS}]|[^\\s{_CJK_CLASS}]+\\s*|\\s+")

#: ``[[sim:unicode]]``: every frame is valid UTF-8 on its own, but grapheme clusters (a ZWJ
#: family, a flag, a combining accent) and multi-byte runs are split across frames.
UNICODE_FRAMES: tuple[str, ...] = (
    "Unicode check: ",
    "日本",
    "語の",
    "テキスト",
    "、中文",
    "字符",
    "，한국어 ",
    "Ελλη",
    "νικά ",
    "Кири",
    "ллица ",
    "עברית ",
    "e",
    "\u0301",  # combining acute accent: "é" split across two frames
    " family ",
    "👩\u200d",
    "👩\u200d👧\u200d",
    "👦",  # one ZWJ sequence over three frames
    " flag ",
    "🇯",
    "🇵",  # one regional-indicator pair over two frames
    " math 𝔘𝔫𝔦",
    "𝔠𝔬𝔡𝔢 ",
    "emoji 🚀✨",
    " end.",
)
UNICODE_TEXT = "".join(UNICODE_FRAMES)


def has_cjk(text: str) -> bool:
    """Whether ``text`` holds any CJK character (the simulator then answers in Chinese)."""
    return _CJK.search(text) is not None


def split_text(text: str, rng: random.Random) -> list[str]:
    """Cut ``text`` into frame contents: 1-4 words, or 1-3 CJK characters, per frame.

    ``"".join(split_text(t, rng)) == t`` for every ``t``; no piece is empty.
    """
    pieces = _PIECE.findall(text)
    frames: list[str] = []
    i = 0
    while i < len(pieces):
        cjk = _CJK.fullmatch(pieces[i]) is not None
        size = rng.randint(1, 3) if cjk else rng.randint(1, 4)
        group = [pieces[i]]
        i += 1
        while len(group) < size and i < len(pieces) and (_CJK.fullmatch(pieces[i]) is not None) == cjk:
            group.append(pieces[i])
            i += 1
        frames.append("".join(group))
    return frames


def excerpt(text: str, limit: int = 80) -> str:
    """The first ``limit`` characters of ``text`` with runs of whitespace collapsed."""
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


def greeting(prompt: str, model: str) -> str:
    """The scripted answer to a prompt that asks for nothing in particular."""
    quoted = excerpt(prompt)
    if not quoted:
        return (
            f"Hello! This is the kiro2api upstream simulator standing in for {model}. "
            "There is no real model here: the answer is scripted, so you can try the gateway without a Kiro account."
        )
    if has_cjk(prompt):
        return (
            f"你好！这里是 kiro2api 上游模拟器，代替 {model} 回答。你说：「{quoted}」。"
            "这是一个脚本化的回答，没有真正的模型参与。"
        )
    return (
        f'Hello! This is the kiro2api upstream simulator standing in for {model}. You said: "{quoted}". '
        "There is no real model here: the answer is scripted, so you can try the gateway without a Kiro account."
    )


def reasoning_text(prompt: str) -> str:
    """What the simulated model thinks."""
    # The quoted prompt must not close a <thinking> block early.
    quoted = excerpt(prompt, 60).replace("<", "‹").replace(">", "›")
    return f'The user wrote "{quoted}". I am the simulator, so a short scripted answer will do.'


def thinking_frames(prompt: str, rng: random.Random) -> list[str]:
    """A ``<thinking>...</thinking>\\n\\n`` block, its tags cut across frames as tokens would be."""
    return ["<thin", "king>", *split_text(reasoning_text(prompt), rng), "</thinking>", "\n\n"]


def long_frames(count: int) -> list[str]:
    """``[[sim:long:N]]``: exactly ``count`` numbered frames (``"chunk-1 "``, ``"chunk-2 "``...)."""
    return [f"chunk-{i} " for i in range(1, count + 1)]
