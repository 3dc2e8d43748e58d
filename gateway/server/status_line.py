"""HTTP status lines with their reason phrase (``HTTP/1.1 404 Not Found``). Pure.

hypercorn hands h11 a response without a reason, so the head goes out as
``HTTP/1.1 404 \\r\\n``: valid HTTP/1.1, but curl, proxies' logs and people reading a capture
see a bare number. The connection driver passes each response head through
:func:`with_reason` on its way to the socket.
"""

from __future__ import annotations

from http import HTTPStatus

_PREFIX = b"HTTP/1.1 "
_PHRASES = {s.value: s.phrase.encode() for s in HTTPStatus}


def with_reason(data: bytes) -> bytes:
    """``data`` with the reason phrase added, if it is a response head that lacks one."""
    # b"HTTP/1.1 200 \r\n...": the code at 9:12, then an empty reason
    if not data.startswith(_PREFIX) or data[12:15] != b" \r\n" or not data.endswith(b"\r\n\r\n"):
        return data
    code = data[9:12]
    phrase = _PHRASES.get(int(code)) if code.isdigit() else None
    if phrase is None:
        return data
    return data[:13] + phrase + data[13:]
