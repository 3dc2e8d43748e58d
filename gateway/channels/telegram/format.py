"""Outbound text for Telegram: chunking and Markdown -> Telegram HTML (CHANNELS.md 3.4). Pure.

Chunking works on the *plain* (Markdown) text: a message holds at most 4096 characters
after entity parsing, and rendering only removes characters (``**`` markers) or turns them
into entities (``&lt;`` counts as one), so a plain chunk within ``textChunkLimit`` renders
within the limit. Lengths are UTF-16 code units, as Telegram counts them. A cut prefers a
blank line, then a newline, a sentence end, a space, and only then a hard cut -- never
between the halves of a surrogate pair (here: never inside one code point). A code fence
cut by a split is closed at the end of its chunk and reopened, with its language, at the
start of the next.

Each chunk is rendered on its own, so no tag spans two messages. :func:`render_html`
escapes every ``<``, ``>`` and ``&`` that is not one of the tags it produces, and checks its
own output (:func:`balanced`); if the Markdown was too tangled to nest properly, the chunk
goes out as plain text instead of as broken HTML.
"""

from __future__ import annotations

import html
import re
from html.parser import HTMLParser

MAX_MESSAGE = 4096
FENCE = re.compile(r"^(\s*)(```|~~~)([^\n`]*)$")


def utf16_len(text: str) -> int:
    return len(text) + sum(1 for ch in text if ord(ch) > 0xFFFF)


def _prefix_within(text: str, limit: int) -> int:
    """The number of code points of ``text`` whose UTF-16 length is <= ``limit``."""
    units = 0
    for i, ch in enumerate(text):
        units += 2 if ord(ch) > 0xFFFF else 1
        if units > limit:
            return i
    return len(text)


_BREAKS = (
    re.compile(r"\n[ \t]*\n"),  # blank line
    re.compile(r"\n"),
    re.compile(r"[.!?\u3002][)\"'\]]*(?=\s)"),  # sentence end
    re.compile(r"\s"),
)


def _cut_point(window: str) -> int:
    """Where to end a chunk whose candidate text is ``window`` (already within the limit)."""
    floor = len(window) // 3  # a break too near the start would make tiny chunks
    for pattern in _BREAKS:
        best = -1
        for match in pattern.finditer(window):
            if match.end() > floor:
                best = match.end()
        if best > 0:
            return best
    return len(window)


def _open_fence(text: str, state: tuple[str, str] | None) -> tuple[str, str] | None:
    """The fence (marker, language) still open after ``text``, given the one open before."""
    for line in text.split("\n"):
        match = FENCE.match(line)
        if not match:
            continue
        marker, lang = match.group(2), match.group(3).strip()
        if state is None:
            state = (marker, lang)
        elif marker == state[0] and not lang:
            state = None
    return state


def split_text(text: str, limit: int = 4000, mode: str = "length") -> list[str]:
    """``text`` as ordered chunks of at most ``limit`` UTF-16 units each; none empty."""
    limit = max(64, min(limit, MAX_MESSAGE))
    pieces = [text]
    if mode == "newline":
        pieces = [p for p in re.split(r"\n[ \t]*\n", text) if p.strip()]
    chunks: list[str] = []
    for piece in pieces:
        chunks.extend(_split_length(piece, limit))
    return [c for c in chunks if c.strip()] or ([text[:limit]] if text.strip() else [])


def _split_length(text: str, limit: int) -> list[str]:
    chunks: list[str] = []
    fence: tuple[str, str] | None = None
    rest = text
    while rest:
        head = f"{fence[0]}{fence[1]}\n" if fence else ""
        budget = limit - utf16_len(head)
        if utf16_len(rest) <= budget:
            chunks.append(head + rest)
            break
        # leave room to close a fence that is open at the cut
        window = rest[: _prefix_within(rest, budget - 4)]
        cut = _cut_point(window)
        if cut <= 0:
            cut = max(1, len(window))
        body = rest[:cut]
        rest = rest[cut:]
        after = _open_fence(body, fence)
        chunk = head + body
        if after is not None:
            chunk = chunk.rstrip("\n") + "\n" + after[0]
        chunks.append(chunk.rstrip() if after is None else chunk)
        fence = after
        rest = rest.lstrip("\n") if fence is None else rest
    return chunks


# -- Markdown -> Telegram HTML ---------------------------------------------------------------

ALLOWED_TAGS = frozenset(
    {"b", "strong", "i", "em", "u", "ins", "s", "strike", "del", "code", "pre", "a"}
    | {"blockquote", "tg-spoiler", "span", "tg-emoji"}
)
_INLINE = (
    (re.compile(r"\*\*(?=\S)(.+?)(?<=\S)\*\*"), "b"),
    (re.compile(r"__(?=\S)(.+?)(?<=\S)__"), "b"),
    (re.compile(r"~~(?=\S)(.+?)(?<=\S)~~"), "s"),
    (re.compile(r"\|\|(?=\S)(.+?)(?<=\S)\|\|"), "tg-spoiler"),
    (re.compile(r"(?<![\w*])\*(?=\S)([^*\n]+?)(?<=\S)\*(?![\w*])"), "i"),
    (re.compile(r"(?<![\w_])_(?=\S)([^_\n]+?)(?<=\S)_(?![\w_])"), "i"),
)
_LINK = re.compile(r"\[([^\]\n]+)\]\((https?://[^\s)]+)\)")
_CODE = re.compile(r"`([^`\n]+)`")


def _inline(text: str) -> str:
    """One line (or paragraph) of Markdown outside code: escape, then mark up."""
    out: list[str] = []
    last = 0
    for match in _CODE.finditer(text):
        out.append(_marks(text[last : match.start()]))
        out.append(f"<code>{html.escape(match.group(1), quote=False)}</code>")
        last = match.end()
    out.append(_marks(text[last:]))
    return "".join(out)


def _marks(text: str) -> str:
    links: list[str] = []

    def keep_link(match: re.Match[str]) -> str:
        label = html.escape(match.group(1), quote=False)
        href = html.escape(match.group(2), quote=True)
        links.append(f'<a href="{href}">{label}</a>')
        return f"\x00{len(links) - 1}\x00"

    text = _LINK.sub(keep_link, text)
    text = html.escape(text, quote=False)
    for pattern, tag in _INLINE:
        text = pattern.sub(rf"<{tag}>\1</{tag}>", text)
    return re.sub(r"\x00(\d+)\x00", lambda m: links[int(m.group(1))], text)


def render_html(markdown: str) -> str:
    """Telegram HTML for one chunk of Markdown-ish text."""
    out: list[str] = []
    lines = markdown.split("\n")
    i = 0
    quote: list[str] = []

    def flush_quote() -> None:
        if quote:
            out.append("<blockquote>" + "\n".join(quote) + "</blockquote>")
            quote.clear()

    while i < len(lines):
        line = lines[i]
        match = FENCE.match(line)
        if match:
            flush_quote()
            marker, lang = match.group(2), match.group(3).strip()
            body: list[str] = []
            i += 1
            while i < len(lines) and lines[i].strip() != marker:
                body.append(lines[i])
                i += 1
            i += 1  # the closing fence (or the end)
            code = html.escape("\n".join(body), quote=False)
            attr = f' class="language-{html.escape(lang, quote=True)}"' if lang else ""
            out.append(f"<pre><code{attr}>{code}</code></pre>")
            continue
        if line.startswith(">"):
            quote.append(_inline(line[1:].lstrip()))
            i += 1
            continue
        flush_quote()
        heading = re.match(r"#{1,6}\s+(.*)", line)
        out.append(f"<b>{_inline(heading.group(1))}</b>" if heading else _inline(line))
        i += 1
    flush_quote()
    return _join(out)


def _join(parts: list[str]) -> str:
    text = ""
    for part in parts:
        if text and not text.endswith(("</pre>", "</blockquote>")):
            text += "\n"
        elif text:
            text += "\n"
        text += part
    return text


class _Checker(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.stack: list[str] = []
        self.ok = True

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag not in ALLOWED_TAGS:
            self.ok = False
        self.stack.append(tag)

    def handle_endtag(self, tag: str) -> None:
        if not self.stack or self.stack.pop() != tag:
            self.ok = False


def balanced(markup: str) -> bool:
    checker = _Checker()
    checker.feed(markup)
    checker.close()
    return checker.ok and not checker.stack


def strip_tags(markup: str) -> str:
    """The text a reader sees: tags removed, entities decoded."""
    return html.unescape(re.sub(r"<[^>]+>", "", markup))


def render_or_plain(markdown: str) -> tuple[str, bool]:
    """``(text, is_html)``: the HTML if it is well-formed, else the plain chunk."""
    rendered = render_html(markdown)
    if balanced(rendered) and 0 < utf16_len(strip_tags(rendered)) <= MAX_MESSAGE:
        return rendered, True
    return markdown, False
