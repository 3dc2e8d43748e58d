"""The WhatsApp Cloud API (Graph API) over httpx: one client per account run (CHANNELS.md 4.3,
4.4, 4.7).

Requests go to ``<apiBaseUrl>/<graphApiVersion>/<path>`` with ``Authorization: Bearer
<accessToken>``. Failures become :class:`GraphError` (Graph answered with its error
envelope ``{error:{message, type, code, error_subcode?, error_data:{details}, fbtrace_id}}``
or an HTTP error) or :class:`GraphNetworkError` (no usable answer; ``sent`` says whether
the request may have reached Meta). The token never appears in a message: it is
registered with the log redactor and masked here.

:func:`classify` maps an error to the outbox's class, branching on ``code`` and never on
titles, as Meta advises.
"""

from __future__ import annotations

import json
import uuid
from typing import TYPE_CHECKING, Any

import httpx
import trio

from ...errors import ChannelError
from ...logs.redact import add_secret
from ..sending import SendError
from ..telegram.api import _Body, tls_context

if TYPE_CHECKING:
    from .config import WhatsAppAccountConfig

DEFAULT_TIMEOUT_S = 30.0
CONNECT_TIMEOUT_S = 10.0
PROBE_FIELDS = "display_phone_number,verified_name,quality_rating"

AUTH_CODES = frozenset({190})
# code -> (kind, retry after s); CHANNELS.md 4.7
RATE_LIMITS = {130429: None, 131056: 6.0, 131048: 600.0, 4: 60.0, 80007: 60.0}
WINDOW_CLOSED = 131047
UNDELIVERABLE = 131026


class GraphError(ChannelError):
    """The Graph API answered with an error; ``graph_code`` is Meta's error code (the
    class's ``code`` is the wire's, as for every error in the tree)."""

    def __init__(
        self,
        status: int,
        code: int | None,
        message: str,
        details: str | None = None,
        subcode: int | None = None,
    ) -> None:
        text = f"Graph error {code}: {message}" if code is not None else f"HTTP {status}: {message}"
        if details and details not in message:
            text += f" ({details})"
        super().__init__(text)
        self.status = status
        self.graph_code = code
        self.message = message
        self.details = details
        self.subcode = subcode

    @property
    def auth(self) -> bool:
        return self.status == 401 or self.graph_code in AUTH_CODES


class GraphNetworkError(ChannelError):
    """No usable answer from the Graph API (connect, TLS, timeout, a garbled body)."""

    retryable: bool | None = True

    def __init__(self, text: str, *, sent: bool) -> None:
        self.sent = sent
        super().__init__(text)


def classify(exc: GraphError | GraphNetworkError) -> SendError:
    """The outbox's error class of a Graph failure (CHANNELS.md 4.7)."""
    if isinstance(exc, GraphNetworkError):
        return SendError("ambiguous" if exc.sent else "network", str(exc))
    if exc.auth:
        return SendError("auth", str(exc), status=exc.status)
    if exc.graph_code in RATE_LIMITS:
        return SendError("rate_limit", str(exc), RATE_LIMITS[exc.graph_code], exc.status)
    if exc.graph_code == WINDOW_CLOSED:
        return SendError(
            "permanent",
            f"{exc} -- more than 24 h since this user's last message: they have to write "
            "first (message templates are not supported)",
            status=exc.status,
        )
    if exc.status == 429:
        return SendError("rate_limit", str(exc), None, 429)
    if exc.status >= 500:
        return SendError("network", str(exc), status=exc.status)
    return SendError("permanent", str(exc), status=exc.status)


class GraphApi:
    """One account's Graph client. Not shared: a run builds it and closes it."""

    def __init__(self, cfg: WhatsAppAccountConfig, *, timeout_s: float | None = None) -> None:
        assert cfg.token is not None
        self.cfg = cfg
        self._token = cfg.token
        add_secret(cfg.token)
        self.root = f"{cfg.api_base_url.rstrip('/')}/{cfg.graph_api_version}"
        self.timeout_s = float(timeout_s or cfg.timeout_seconds or DEFAULT_TIMEOUT_S)
        self._client = httpx.AsyncClient(
            verify=tls_context(),
            limits=httpx.Limits(max_connections=16, max_keepalive_connections=8),
            timeout=httpx.Timeout(self.timeout_s, connect=CONNECT_TIMEOUT_S),
            trust_env=False,
        )

    def mask(self, text: str) -> str:
        return text.replace(self._token, "***")

    async def aclose(self) -> None:
        await self._client.aclose()

    async def call(
        self,
        method: str,
        path: str,
        *,
        params: dict[str, str] | None = None,
        body: bytes | None = None,
        content_type: str = "application/json",
    ) -> dict[str, Any]:
        """The JSON answer of one Graph request; raises GraphError / GraphNetworkError."""
        headers = {"authorization": f"Bearer {self._token}"}
        if body is not None:
            headers["content-type"] = content_type
        request = self._client.build_request(
            method, f"{self.root}/{path.lstrip('/')}", params=params, headers=headers
        )
        if body is not None:
            request.stream = _Body(body)  # not a generator: safe to cancel mid-call
            request.headers["content-length"] = str(len(body))
        try:
            response = await self._client.send(request, stream=True)
            try:
                data = await response.aread()
            finally:
                with trio.CancelScope(shield=True):
                    await response.aclose()
        except (httpx.ConnectError, httpx.ConnectTimeout, httpx.UnsupportedProtocol) as exc:
            raise GraphNetworkError(self._text(exc), sent=False) from None
        except httpx.TimeoutException as exc:
            raise GraphNetworkError(self._text(exc) or "timed out", sent=True) from None
        except httpx.HTTPError as exc:
            raise GraphNetworkError(self._text(exc), sent=True) from None
        return self._result(response.status_code, data)

    async def post_json(self, path: str, payload: dict[str, Any]) -> dict[str, Any]:
        body = json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode()
        return await self.call("POST", path, body=body)

    async def upload(self, data: bytes, mime: str, filename: str) -> str:
        """``POST /<phoneNumberId>/media``: the media id to send by."""
        boundary = uuid.uuid4().hex
        safe = filename.replace('"', "").replace("\r", "").replace("\n", "") or "file"
        parts = [
            f'--{boundary}\r\nContent-Disposition: form-data; name="messaging_product"\r\n\r\n'
            "whatsapp\r\n",
            f'--{boundary}\r\nContent-Disposition: form-data; name="type"\r\n\r\n{mime}\r\n',
            f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="{safe}"\r\n'
            f"Content-Type: {mime}\r\n\r\n",
        ]
        body = "".join(parts).encode() + data + f"\r\n--{boundary}--\r\n".encode()
        answer = await self.call(
            "POST",
            f"{self.cfg.phone_number_id}/media",
            body=body,
            content_type=f"multipart/form-data; boundary={boundary}",
        )
        media_id = answer.get("id")
        if not isinstance(media_id, str) or not media_id:
            raise GraphNetworkError("media upload: no id in the answer", sent=True)
        return media_id

    async def download(self, media_id: str, max_bytes: int) -> tuple[bytes, str | None]:
        """``GET /<media-id>`` for its URL, then the bytes (with the bearer token)."""
        info = await self.call("GET", media_id)
        url = info.get("url")
        if not isinstance(url, str):
            raise GraphNetworkError("media lookup: no url in the answer", sent=True)
        size = info.get("file_size")
        if isinstance(size, int) and size > max_bytes:
            raise GraphError(413, None, f"media larger than {max_bytes} bytes")
        try:
            async with self._client.stream(
                "GET", url, headers={"authorization": f"Bearer {self._token}"}
            ) as response:
                if response.status_code != 200:
                    raise GraphError(response.status_code, None, "media download failed")
                chunks, total = [], 0
                async for chunk in response.aiter_bytes():
                    total += len(chunk)
                    if total > max_bytes:
                        raise GraphError(413, None, f"media larger than {max_bytes} bytes")
                    chunks.append(chunk)
        except httpx.HTTPError as exc:
            raise GraphNetworkError(self._text(exc), sent=False) from None
        mime = info.get("mime_type")
        return b"".join(chunks), mime if isinstance(mime, str) else None

    def _text(self, exc: BaseException) -> str:
        text = str(exc) or type(exc).__name__
        return self.mask(f"{type(exc).__name__}: {text}" if str(exc) else text)

    def _result(self, status: int, data: bytes) -> dict[str, Any]:
        try:
            answer = json.loads(data) if data else {}
        except ValueError:
            answer = None
        if isinstance(answer, dict) and isinstance(answer.get("error"), dict):
            error = answer["error"]
            code = error.get("code")
            subcode = error.get("error_subcode")
            details = (
                (error.get("error_data") or {}).get("details")
                if isinstance(error.get("error_data"), dict)
                else None
            )
            raise GraphError(
                status if status >= 400 else 400,
                code if isinstance(code, int) else None,
                self.mask(str(error.get("message") or f"HTTP {status}")),
                self.mask(str(details)) if details else None,
                subcode if isinstance(subcode, int) else None,
            )
        if status >= 400:
            raise GraphError(status, None, f"HTTP {status} (not a Graph answer)")
        if not isinstance(answer, dict):
            raise GraphNetworkError("the answer is not a Graph JSON object", sent=True)
        return answer


async def probe_number(api: GraphApi, timeout_s: float) -> dict[str, Any]:
    """The phone-number GET: the ``probe`` object of CHANNELS.md 7.2."""
    start = trio.current_time()
    result: dict[str, Any] = {"ok": False, "status": None, "error": None, "elapsedMs": 0}
    with trio.move_on_after(timeout_s) as scope:
        try:
            info = await api.call(
                "GET", str(api.cfg.phone_number_id), params={"fields": PROBE_FIELDS}
            )
            result["phone"] = {
                "id": info.get("id"),
                "displayPhoneNumber": info.get("display_phone_number"),
                "verifiedName": info.get("verified_name"),
                "qualityRating": info.get("quality_rating"),
            }
            result["ok"] = True
            result["status"] = 200
        except GraphError as exc:
            result["status"] = exc.status
            result["code"] = exc.graph_code
            result["error"] = str(exc)
        except GraphNetworkError as exc:
            result["error"] = str(exc)
    if scope.cancelled_caught:
        result["error"] = f"timed out after {int(timeout_s * 1000)}ms"
    result["elapsedMs"] = int((trio.current_time() - start) * 1000)
    return result
