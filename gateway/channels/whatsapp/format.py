"""Markdown-ish model output -> WhatsApp's own marks (CHANNELS.md 4.3). Pure.

WhatsApp formats ``*bold*``, ``_italic_``, ``~strike~``, `` `code` `` and ```` ```blocks``` ````
itself; there is no escaping and no HTML. So: ``**bold**``/``__bold__`` and ``# headings``
become ``*bold*``, ``*italic*`` becomes ``_italic_``, ``~~strike~~`` ``~strike~``, a link
``[text](url)`` ``text (url)``; code is left exactly as it is (a fence loses its language tag, which WhatsApp would show).
"""

from __future__ import annotations

import re

_FENCE = re.compile(r"^\s*(```|~~~)")
_INLINE_CODE = re.compile(r"`[^`\n]+`")
_BOLD = re.compile(r"\*\*(?=\S)(.+?)(?<=\S)\*\*|__(?=\S)(.+?)(?<=\S)__")
_ITALIC = re.compile(r"(?<![*\w])\*(?=[^\s*])([^*\n]+?)(?<=[^\s*])\*(?![*\w])")
_STRIKE = re.compile(r"~~(?=\S)(.+?)(?<=\S)~~")
_LINK = re.compile(r"\[([^\]\n]+)\]\((https?://[^\s)]+)\)")
_HEADING = re.compile(r"^(\s{0,3})#{1,6}\s+(.+?)\s*#*\s*$")
_BOLD_MARK = "\x00"


def _inline(text: str) -> str:
    out: list[str] = []
    last = 0
    for code in _INLINE_CODE.finditer(text):
        out.append(_marks(text[last : code.start()]))
        out.append(code.group(0))
        last = code.end()
    out.append(_marks(text[last:]))
    return "".join(out)


def _marks(text: str) -> str:
    text = _LINK.sub(lambda m: f"{m.group(1)} ({m.group(2)})", text)
    text = _BOLD.sub(lambda m: f"{_BOLD_MARK}{m.group(1) or m.group(2)}{_BOLD_MARK}", text)
    text = _ITALIC.sub(lambda m: f"_{m.group(1)}_", text)
    text = _STRIKE.sub(lambda m: f"~{m.group(1)}~", text)
    return text.replace(_BOLD_MARK, "*")


def render(markdown: str) -> str:
    lines = markdown.split("\n")
    out: list[str] = []
    in_code = False
    for line in lines:
        if _FENCE.match(line):
            in_code = not in_code
            out.append("```")  # WhatsApp's monospace block; a language tag would show as text
            continue
        if in_code:
            out.append(line)
            continue
        heading = _HEADING.match(line)
        if heading:
            out.append(f"{heading.group(1)}*{_inline(heading.group(2)).replace('*', '')}*")
            continue
        out.append(_inline(line))
    return "\n".join(out)
