"""Files sent with a chat message: decoded, checked and sorted into what a model can take (pure).

* **Images** (PNG, JPEG, GIF, WebP) go to the model as image parts of the user message, in
  each provider's own format. The transcript keeps their type, name and size but not the
  bytes (every append rewrites the transcript, and history never sends image data back:
  PROTOCOL.md 7.8), so a later turn knows an image was there without seeing it again.
* **Text files** (``text/*``, JSON, XML, YAML, CSV, ...; UTF-8) are given to the model as
  text after the message and kept in the transcript, so later turns still see them.
* Anything else is refused with a message that names the attachment and says what is
  accepted: better a clear error than a file the model silently never saw.

A ``data:<mime>;base64,`` prefix on ``content`` is accepted (browsers' ``FileReader`` makes
those); the MIME type then comes from it unless ``mimeType`` says otherwise.
"""

from __future__ import annotations

import base64
import binascii
import mimetypes
import re

import attrs

from ..errors import PeerError
from ..protocol.chat import Attachment

MAX_ATTACHMENTS = 10
MAX_IMAGE_BYTES = 5_000_000
MAX_TEXT_BYTES = 512 * 1024
IMAGE_TYPES = frozenset({"image/png", "image/jpeg", "image/gif", "image/webp"})
TEXT_TYPES = frozenset(
    {
        "application/json",
        "application/xml",
        "application/yaml",
        "application/x-yaml",
        "application/toml",
        "application/javascript",
        "application/x-sh",
        "application/sql",
    }
)
_DATA_URL = re.compile(r"^data:([\w.+-]+/[\w.+-]+)?(;[\w=.+-]+)*;base64,", re.IGNORECASE)
_MAGIC = (
    (b"\x89PNG\r\n\x1a\n", "image/png"),
    (b"\xff\xd8\xff", "image/jpeg"),
    (b"GIF87a", "image/gif"),
    (b"GIF89a", "image/gif"),
)


class AttachmentError(PeerError, ValueError):
    """An attachment that cannot be used; the message names it and the problem."""


@attrs.frozen
class ImagePart:
    mime_type: str
    data: str  # base64, as the providers want it
    size: int
    file_name: str | None = None


@attrs.frozen
class TextPart:
    mime_type: str
    text: str
    size: int
    file_name: str | None = None


Part = ImagePart | TextPart


def parse(attachments: list[Attachment]) -> list[Part]:
    """Every attachment decoded and classified; :class:`AttachmentError` for the first bad one."""
    if len(attachments) > MAX_ATTACHMENTS:
        raise AttachmentError(
            f"attachments: at most {MAX_ATTACHMENTS} files per message, got {len(attachments)}"
        )
    return [_parse_one(a, f"attachments[{i}]") for i, a in enumerate(attachments)]


def _parse_one(attachment: Attachment, where: str) -> Part:
    content = attachment.content.strip()
    url_type = None
    match = _DATA_URL.match(content)
    if match:
        url_type = (match.group(1) or "").lower() or None
        content = content[match.end() :]
    try:
        raw = base64.b64decode(_pad(re.sub(r"\s+", "", content)), validate=True)
    except (binascii.Error, ValueError):
        raise AttachmentError(f"{where}.content: not valid base64") from None
    name = attachment.file_name
    label = f'{where} ("{name}")' if name else where
    mime = _mime(attachment, url_type, raw)
    if mime in IMAGE_TYPES:
        if len(raw) > MAX_IMAGE_BYTES:
            raise AttachmentError(
                f"{label}: image is {len(raw)} bytes; the limit is {MAX_IMAGE_BYTES}"
            )
        return ImagePart(mime, base64.b64encode(raw).decode("ascii"), len(raw), name)
    if mime is not None and (mime.startswith("text/") or mime in TEXT_TYPES):
        if len(raw) > MAX_TEXT_BYTES:
            raise AttachmentError(
                f"{label}: text file is {len(raw)} bytes; the limit is {MAX_TEXT_BYTES}"
            )
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError:
            raise AttachmentError(f"{label}: text file is not valid UTF-8") from None
        return TextPart(mime, text.replace("\x00", ""), len(raw), name)
    shown = mime or "an unknown type"
    raise AttachmentError(
        f"{label}: {shown} is not supported (send PNG, JPEG, GIF or WebP images, or text files)"
    )


def _pad(text: str) -> str:
    return text + "=" * (-len(text) % 4)


def _mime(attachment: Attachment, url_type: str | None, raw: bytes) -> str | None:
    declared = (attachment.mime_type or "").split(";")[0].strip().lower() or None
    if declared and declared != "application/octet-stream":
        return declared
    if url_type and url_type != "application/octet-stream":
        return url_type
    for magic, kind in _MAGIC:
        if raw.startswith(magic):
            return kind
    if raw[:4] == b"RIFF" and raw[8:12] == b"WEBP":
        return "image/webp"
    if attachment.file_name:
        guessed, _ = mimetypes.guess_type(attachment.file_name, strict=False)
        if guessed:
            return guessed
        if attachment.file_name.lower().endswith((".md", ".log", ".txt", ".yaml", ".yml")):
            return "text/plain"
    return None


def model_text(message: str, parts: list[Part]) -> str:
    """The user's words followed by each text file, as the model reads them."""
    pieces = [message] if message else []
    for part in parts:
        if isinstance(part, TextPart):
            name = part.file_name or "attachment"
            pieces.append(f"Attached file {name} ({part.mime_type}):\n{part.text}")
    return "\n\n".join(pieces)


def record(parts: list[Part]) -> list[dict[str, object]]:
    """What the transcript keeps of each attachment (text files whole, images without data)."""
    out: list[dict[str, object]] = []
    for part in parts:
        entry: dict[str, object] = {
            "type": "image" if isinstance(part, ImagePart) else "text",
            "mimeType": part.mime_type,
            "bytes": part.size,
        }
        if part.file_name:
            entry["fileName"] = part.file_name
        if isinstance(part, TextPart):
            entry["text"] = part.text
        out.append(entry)
    return out
