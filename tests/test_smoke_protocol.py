"""Handshake and basic requests with a plain `websockets` client written from PROTOCOL.md."""

from __future__ import annotations

from gateway.app import Running

from .conftest import handshake, in_thread, open_raw, request


async def test_hello_ok_then_health(gateway: Running) -> None:
    def client() -> None:
        with open_raw(gateway.url) as ws:
            hello = handshake(ws)
            assert hello["ok"] is True
            payload = hello["payload"]
            assert payload["type"] == "hello-ok"
            assert payload["protocol"] == 4
            assert "health" in payload["features"]["methods"]
            assert payload["policy"] == {
                "maxPayload": 26214400,
                "maxBufferedBytes": 52428800,
                "tickIntervalMs": 30000,
            }
            assert payload["auth"] == {"role": "operator", "scopes": ["operator.admin"]}
            res = request(ws, "health", {})
            assert res["ok"] is True
            assert res["payload"]["ok"] is True

    await in_thread(client)
