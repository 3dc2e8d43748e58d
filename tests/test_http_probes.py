"""HTTP health/readiness probes on the gateway port (OPERATIONS.md A.0, A.1), real server on port 0."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
import trio

from gateway.app import Running
from gateway.config.model import Config, ControlUi, Gateway

from .conftest import StartGateway, make_settings

LIVENESS = ["/health", "/healthz"]
READINESS = ["/ready", "/readyz"]
JSON_TYPE = "application/json; charset=utf-8"


@pytest.fixture
async def client(gateway: Running) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(
        base_url=f"http://{gateway.host}:{gateway.port}", timeout=10
    ) as http:
        yield http


def assert_baseline_headers(response: httpx.Response) -> None:
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.headers["referrer-policy"] == "no-referrer"


@pytest.mark.parametrize("path", LIVENESS)
async def test_liveness_get(client: httpx.AsyncClient, path: str) -> None:
    with trio.fail_after(10):
        response = await client.get(path)
    assert response.status_code == 200
    assert response.json() == {"ok": True, "status": "live"}
    assert response.headers["content-type"] == JSON_TYPE
    assert_baseline_headers(response)


@pytest.mark.parametrize("path", LIVENESS + READINESS)
async def test_probes_answer_head_without_a_body(client: httpx.AsyncClient, path: str) -> None:
    with trio.fail_after(10):
        response = await client.head(path)
    assert response.status_code == 200
    assert response.content == b""
    assert response.headers["content-type"] == JSON_TYPE
    assert_baseline_headers(response)


@pytest.mark.parametrize("path", READINESS)
async def test_readiness_get(client: httpx.AsyncClient, path: str) -> None:
    with trio.fail_after(10):
        response = await client.get(path)
    assert response.status_code == 200
    assert response.json() == {"ok": True, "status": "ready"}
    assert_baseline_headers(response)


@pytest.mark.parametrize("path", LIVENESS + READINESS)
@pytest.mark.parametrize("method", ["POST", "PUT", "DELETE"])
async def test_other_methods_get_405_with_allow(
    client: httpx.AsyncClient, path: str, method: str
) -> None:
    with trio.fail_after(10):
        response = await client.request(method, path)
    assert response.status_code == 405
    allowed = {m.strip() for m in response.headers["allow"].split(",")}
    assert allowed == {"GET", "HEAD"}
    assert response.headers["content-type"].startswith("text/plain")
    assert_baseline_headers(response)


@pytest.mark.parametrize("path", ["/v1/models", "/v1/nope", "/tools/x", "/metrics/x", "/hooks"])
async def test_gateway_paths_stay_404_with_the_ui_at_the_root(
    client: httpx.AsyncClient, path: str
) -> None:
    """The Control UI's SPA fallback never claims a path the gateway owns: a disabled or
    unknown API path is a plain 404, not the dashboard's index.html."""
    with trio.fail_after(10):
        response = await client.get(path)
    assert response.status_code == 404
    assert response.headers["content-type"].startswith("text/plain")
    assert response.text == "Not Found"
    assert_baseline_headers(response)


@pytest.mark.parametrize("path", ["/", "/nope", "/healthz/extra", "/v1/models"])
async def test_unknown_path_is_404_text_without_the_ui(
    start_gateway: StartGateway, tmp_path: Path, path: str
) -> None:
    config = Config(gateway=Gateway(control_ui=ControlUi(enabled=False)))
    running = await start_gateway(make_settings(tmp_path, config=config))
    async with httpx.AsyncClient(base_url=f"http://{running.host}:{running.port}") as http:
        with trio.fail_after(10):
            response = await http.get(path)
    assert response.status_code == 404
    assert response.headers["content-type"].startswith("text/plain")
    assert response.text == "Not Found"
    assert_baseline_headers(response)


async def test_draining_fails_readiness_but_not_liveness(
    gateway: Running, client: httpx.AsyncClient
) -> None:
    gateway.runtime.draining = True
    with trio.fail_after(10):
        for path in READINESS:
            response = await client.get(path)
            assert response.status_code == 503, path
            assert response.json() == {"ok": False, "status": "draining"}
            assert_baseline_headers(response)
            head = await client.head(path)
            assert head.status_code == 503
            assert head.content == b""
        for path in LIVENESS:
            response = await client.get(path)
            assert response.status_code == 200, path
            assert response.json() == {"ok": True, "status": "live"}


async def test_not_ready_yet_reports_starting(gateway: Running, client: httpx.AsyncClient) -> None:
    gateway.runtime.ready = False
    with trio.fail_after(10):
        response = await client.get("/readyz")
    assert response.status_code == 503
    assert response.json() == {"ok": False, "status": "starting"}


STARTUP = ["/startup", "/startupz"]


async def test_startup_probe_follows_start_and_drain_not_channels(
    gateway: Running, client: httpx.AsyncClient
) -> None:
    """OPERATIONS.md A.1 (newer): 200 {"status":"started"} once started and not draining,
    503 "starting" / "draining" otherwise; GET and HEAD; other methods 405."""
    with trio.fail_after(10):
        for path in STARTUP:
            response = await client.get(path)
            assert response.status_code == 200, path
            assert response.json() == {"ok": True, "status": "started"}
            assert response.headers["content-type"] == JSON_TYPE
            assert_baseline_headers(response)
            head = await client.head(path)
            assert (head.status_code, head.content) == (200, b"")
            post = await client.post(path)
            assert post.status_code == 405
        gateway.runtime.ready = False
        starting = await client.get("/startupz")
        assert (starting.status_code, starting.json()) == (503, {"ok": False, "status": "starting"})
        gateway.runtime.ready = True
        gateway.runtime.draining = True
        draining = await client.get("/startup")
        assert (draining.status_code, draining.json()) == (503, {"ok": False, "status": "draining"})
