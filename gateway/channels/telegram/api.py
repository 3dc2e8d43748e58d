"""The Telegram Bot API over httpx: one client per account run, errors classified, token masked.

Every method goes to ``<apiBaseUrl>/bot<token>/<method>`` as a JSON POST; the answer is the
envelope ``{ok:true, result}`` or ``{ok:false, error_code, description, parameters?}``.

The token is in every URL, so nothing that leaves this module may carry a URL or an httpx
exception: failures become :class:`BotApiError` (Telegram answered ``ok:false``) or
:class:`BotNetworkError` (no usable answer), whose texts pass through :meth:`BotApi.mask`,
and are raised ``from None`` so no traceback shows the original. ``BotNetworkError.sent``
says whether the request may have reached Telegram (a read timeout, a reset mid-response:
the ambiguous case of CHANNELS.md 6.4) or certainly did not (connect, DNS, TLS errors).
"""

from __future__ import annotations

import json
import ssl
import uuid
from collections.abc import AsyncIterator
from typing import Any

import certifi
import httpx
import trio

from ...logs.redact import add_secret

GET_UPDATES_TIMEOUT_S = 25
READ_MARGIN_S = 15
DEFAULT_TIMEOUT_S = 30.0
CONNECT_TIMEOUT_S = 10.0


_tls: ssl.SSLContext | None = None


def tls_context() -> ssl.SSLContext:
    """One verifying TLS context for every client: loading the CA bundle costs ~80 ms of
    CPU, and a client is built per account run, per probe and per stall recovery."""
    global _tls
    if _tls is None:
        _tls = ssl.create_default_context(cafile=certifi.where())
    return _tls


class _Body(httpx.AsyncByteStream):
    """A request body sent in one piece, iterated without a generator."""

    def __init__(self, data: bytes) -> None:
        self._data = data

    def __aiter__(self) -> AsyncIterator[bytes]:
        return _Once(self._data)


class _Once:
    def __init__(self, data: bytes) -> None:
        self._data: bytes | None = data

    def __aiter__(self) -> _Once:
        return self

    async def __anext__(self) -> bytes:
        if self._data is None:
            raise StopAsyncIteration
        data, self._data = self._data, None
        return data


class BotApiError(Exception):
    """Telegram answered ``ok:false`` (or a non-JSON error page with an HTTP status)."""

    def __init__(
        self,
        method: str,
        error_code: int,
        description: str,
        parameters: dict[str, Any] | None = None,
    ) -> None:
        self.method = method
        self.error_code = error_code
        self.description = description
        self.parameters = parameters or {}
        super().__init__(f"{method} returned {error_code}: {description}")

    @property
    def retry_after(self) -> float | None:
        value = self.parameters.get("retry_after")
        return float(value) if isinstance(value, int | float) else None

    @property
    def migrate_to_chat_id(self) -> int | None:
        value = self.parameters.get("migrate_to_chat_id")
        return int(value) if isinstance(value, int) else None

    @property
    def is_conflict(self) -> bool:
        return self.error_code == 409

    @property
    def webhook_active(self) -> bool:
        text = self.description.lower()
        return self.error_code == 409 and "webhook" in text

    @property
    def parse_error(self) -> bool:
        return self.error_code == 400 and "can't parse entities" in self.description.lower()


class BotNetworkError(Exception):
    """No usable answer: connect/DNS/TLS failure, timeout, reset, or a garbled body."""

    def __init__(self, method: str, text: str, *, sent: bool) -> None:
        self.method = method
        self.sent = sent
        super().__init__(f"{method}: {text}")


def describe_error(exc: BaseException) -> str:
    """One line for ``lastError`` and the log; BotApi errors are already masked."""
    if isinstance(exc, BotApiError | BotNetworkError):
        return str(exc)
    text = str(exc) or type(exc).__name__
    return f"{type(exc).__name__}: {text}" if str(exc) else text


class BotApi:
    """One account's Bot API client. Not shared: a run builds it and closes it."""

    def __init__(
        self,
        base_url: str,
        token: str,
        *,
        proxy: str | None = None,
        timeout_s: float | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self._token = token
        self._proxy = proxy
        self.timeout_s = float(timeout_s) if timeout_s else DEFAULT_TIMEOUT_S
        add_secret(token)
        self._client = self._build()

    def _build(self) -> httpx.AsyncClient:
        limits = httpx.Limits(max_connections=16, max_keepalive_connections=8)
        return httpx.AsyncClient(
            proxy=self._proxy,
            verify=tls_context(),
            limits=limits,
            timeout=httpx.Timeout(self.timeout_s, connect=CONNECT_TIMEOUT_S),
            trust_env=False,
        )

    def mask(self, text: str) -> str:
        return text.replace(self._token, "***") if self._token else text

    async def reset(self) -> None:
        """Drop the connection pool (a 409 on a kept-alive socket repeats; a stall may be a
        dead socket): the next call opens a fresh connection."""
        old, self._client = self._client, self._build()
        await old.aclose()

    async def aclose(self) -> None:
        await self._client.aclose()

    def method_url(self, method: str) -> str:
        return f"{self.base_url}/bot{self._token}/{method}"

    def file_url(self, file_path: str) -> str:
        return f"{self.base_url}/file/bot{self._token}/{file_path}"

    async def call(
        self,
        method: str,
        params: dict[str, Any] | None = None,
        *,
        timeout_s: float | None = None,
        body: bytes | None = None,
        content_type: str = "application/json",
    ) -> Any:
        """``result`` of a successful call; raises BotApiError / BotNetworkError."""
        timeout = httpx.Timeout(timeout_s or self.timeout_s, connect=CONNECT_TIMEOUT_S)
        if body is None:
            data = json.dumps(params or {}, ensure_ascii=False, separators=(",", ":")).encode()
        else:
            data = body
        request = self._client.build_request(
            "POST",
            self.method_url(method),
            headers={"content-type": content_type},
            timeout=timeout,
        )
        # our own body stream: httpx's is an async generator, which a call cancelled halfway
        # (a restart, a stop) leaves for the garbage collector to finalize, with a warning
        request.stream = _Body(data)
        request.headers["content-length"] = str(len(data))
        try:
            response = await self._client.send(request, stream=True)
            try:
                body = await response.aread()
            finally:
                with trio.CancelScope(shield=True):
                    await response.aclose()
        except (httpx.ConnectError, httpx.ConnectTimeout, httpx.UnsupportedProtocol) as exc:
            raise BotNetworkError(method, self._exc_text(exc), sent=False) from None
        except httpx.ProxyError as exc:
            raise BotNetworkError(method, self._exc_text(exc), sent=False) from None
        except httpx.TimeoutException as exc:
            raise BotNetworkError(method, self._exc_text(exc) or "timed out", sent=True) from None
        except httpx.HTTPError as exc:
            raise BotNetworkError(method, self._exc_text(exc), sent=True) from None
        return self._result(method, response.status_code, body)

    async def call_upload(
        self,
        method: str,
        params: dict[str, Any],
        field: str,
        filename: str,
        data: bytes,
        mime: str,
    ) -> Any:
        """``method`` with a file uploaded as multipart/form-data (``field``); the other
        parameters go as form fields (objects JSON-encoded, as the Bot API expects)."""
        boundary = uuid.uuid4().hex
        chunks: list[bytes] = []
        for key, value in params.items():
            text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
            chunks.append(
                f'--{boundary}\r\nContent-Disposition: form-data; name="{key}"\r\n\r\n'
                f"{text}\r\n".encode()
            )
        safe = filename.replace('"', "").replace("\r", "").replace("\n", "") or "file"
        chunks.append(
            f'--{boundary}\r\nContent-Disposition: form-data; name="{field}"; '
            f'filename="{safe}"\r\nContent-Type: {mime}\r\n\r\n'.encode()
        )
        chunks += [data, f"\r\n--{boundary}--\r\n".encode()]
        return await self.call(
            method,
            body=b"".join(chunks),
            content_type=f"multipart/form-data; boundary={boundary}",
        )

    def _exc_text(self, exc: BaseException) -> str:
        text = str(exc) or type(exc).__name__
        return self.mask(f"{type(exc).__name__}: {text}" if str(exc) else text)

    def _result(self, method: str, status: int, body: bytes) -> Any:
        try:
            envelope = json.loads(body)
        except ValueError:
            envelope = None
        if not isinstance(envelope, dict) or "ok" not in envelope:
            if status >= 400:
                raise BotApiError(method, status, f"HTTP {status} (not a Bot API answer)")
            raise BotNetworkError(method, "the answer is not a Bot API envelope", sent=True)
        if envelope.get("ok") is True:
            return envelope.get("result")
        code = envelope.get("error_code")
        description = envelope.get("description")
        params = envelope.get("parameters")
        raise BotApiError(
            method,
            int(code) if isinstance(code, int) else status,
            self.mask(str(description)) if description else f"HTTP {status}",
            params if isinstance(params, dict) else None,
        )

    async def download(self, file_path: str, max_bytes: int) -> bytes:
        """The bytes of ``<root>/file/bot<token>/<file_path>``, refused past ``max_bytes``."""
        try:
            async with self._client.stream("GET", self.file_url(file_path)) as response:
                if response.status_code != 200:
                    raise BotApiError("getFile", response.status_code, "file download failed")
                chunks, size = [], 0
                async for chunk in response.aiter_bytes():
                    size += len(chunk)
                    if size > max_bytes:
                        raise BotApiError("getFile", 413, f"file larger than {max_bytes} bytes")
                    chunks.append(chunk)
                return b"".join(chunks)
        except httpx.HTTPError as exc:
            raise BotNetworkError("download", self._exc_text(exc), sent=False) from None
