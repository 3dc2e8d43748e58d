"""The reference's own clients against our gateway (the proof of ISSUE 15's interop part).

* ``openclaw gateway call health|status|system-presence`` (the CLI, token, loopback);
* ``@openclaw/gateway-client``: a shared-token connect, and a signed device connect whose
  ``hello-ok.auth.deviceToken`` then signs in on its own;
* ``openclaw node run`` (the headless node host): connects with a signed device block through
  a recording relay, is listed by ``node.list`` and answers ``node.invoke`` -- from our client
  and from the reference's own ``openclaw nodes list|invoke``.

The node host's signed ``connect`` is checked with our verifier here, and written to
``tests/fixtures/reference-node-connect.json`` when ``SMART_AGENT_NEO_INTEROP_UPDATE_FIXTURE``
is set, so the main suite keeps proving device verification without Node on the machine.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest
import trio
from gateway_client import open_client

from gateway.app import Running
from gateway.devices.identity import DeviceProof, device_id_of, verify_device_proof
from gateway.protocol.codec import from_wire
from gateway.protocol.handshake import ConnectParams
from tests.conftest import TOKEN

from .capture import Relay
from .conftest import Reference, background, run

# The reference takes seconds to start each client, and its node host ~10-20 s to connect.
pytestmark = pytest.mark.timeout(300)

HERE = Path(__file__).parent
FIXTURE = HERE.parent / "tests" / "fixtures" / "reference-node-connect.json"


def lines(stdout: bytes) -> list[dict[str, Any]]:
    return [json.loads(line) for line in stdout.decode().splitlines() if line.startswith("{")]


async def gateway_call(reference: Reference, running: Running, home: Path, method: str) -> Any:
    argv = [
        str(reference.node),
        str(reference.openclaw),
        "gateway",
        "call",
        method,
        "--url",
        running.url,
        "--token",
        TOKEN,
        "--json",
    ]
    done = await run(argv, reference.env(home), home)
    assert done.returncode == 0, (
        method,
        done.stdout.decode()[-2000:],
        done.stderr.decode()[-2000:],
    )
    return json.loads(done.stdout)


async def test_cli_gateway_call(reference: Reference, gateway: Running, tmp_path: Path) -> None:
    home = tmp_path / "cli-home"
    health = await gateway_call(reference, gateway, home, "health")
    assert health["ok"] is True
    assert health["defaultAgentId"] == "main"
    status = await gateway_call(reference, gateway, home, "status")
    assert "heartbeat" in status
    assert isinstance(status["sessions"]["count"], int)
    presence = await gateway_call(reference, gateway, home, "system-presence")
    assert isinstance(presence, list)
    assert any(entry.get("mode") == "gateway" for entry in presence)


async def probe(
    reference: Reference, running: Running, home: Path, mode: str
) -> list[dict[str, Any]]:
    argv = [
        str(reference.node),
        str(HERE / "gateway_client_probe.mjs"),
        str(reference.packages),
        running.url,
        TOKEN,
        mode,
    ]
    done = await run(argv, reference.env(home), home)
    steps = lines(done.stdout)
    assert done.returncode == 0, steps[-1:] or done.stderr.decode()[-2000:]
    return steps


async def test_gateway_client_connects_with_the_shared_token(
    reference: Reference, gateway: Running, tmp_path: Path
) -> None:
    steps = {s["step"]: s for s in await probe(reference, gateway, tmp_path / "gc", "token")}
    hello = steps["connect"]["hello"]
    assert hello["type"] == "hello-ok"
    assert hello["protocol"] == 4
    assert {"node.list", "node.invoke", "device.pair.list"} <= set(hello["features"]["methods"])
    assert steps["connect:health"]["payload"]["ok"] is True
    assert isinstance(steps["connect:system-presence"]["payload"], list)


async def test_gateway_client_signs_in_with_its_device_and_then_its_device_token(
    reference: Reference, gateway: Running, tmp_path: Path
) -> None:
    steps = {s["step"]: s for s in await probe(reference, gateway, tmp_path / "gcd", "device")}
    device_id = steps["identity"]["deviceId"]
    signed = steps["signed"]["hello"]["auth"]
    assert len(signed["deviceToken"]) == 32
    assert signed["scopes"] == ["operator.read", "operator.write"]
    again = steps["device-token"]["hello"]["auth"]
    assert again["deviceToken"] == signed["deviceToken"]  # the token signed it in, and stays
    async with open_client(gateway.url, token=TOKEN) as operator:
        devices = await operator.call("device.pair.list")
    assert [d["deviceId"] for d in devices["paired"]] == [device_id]


async def wait_for_node(url: str, node_name: str) -> dict[str, Any]:
    async with (
        open_client(url, token=TOKEN) as operator,
        operator.subscribe(["presence"]) as events,
    ):
        while True:
            listing = await operator.call("node.list")
            for node in listing["nodes"]:
                if node.get("connected") and node.get("displayName") == node_name:
                    return dict(node)
            await events.receive()  # a node's connect changes presence


async def test_node_host_is_listed_and_answers_invoke(
    reference: Reference, gateway: Running, tmp_path: Path
) -> None:
    relay = Relay(upstream=gateway.url)
    home = tmp_path / "node-home"
    env = reference.env(home, OPENCLAW_GATEWAY_TOKEN=TOKEN)
    async with trio.open_nursery() as nursery:
        await nursery.start(relay.serve)
        argv = [
            str(reference.node),
            str(reference.openclaw),
            "node",
            "run",
            "--host",
            "127.0.0.1",
            "--port",
            str(relay.port),
            "--display-name",
            "interop-node",
        ]
        async with background(argv, env, home / "node-host.log"):
            with trio.fail_after(120):
                node = await wait_for_node(gateway.url, "interop-node")
                exchange = await relay.wait_for_signed_connect()
            # the reference's operator CLI, on the same node through our gateway
            cli = [str(reference.node), str(reference.openclaw), "nodes"]
            target = ["--url", gateway.url, "--token", TOKEN, "--json"]
            cli_home = tmp_path / "cli-home"
            listed = await run([*cli, "list", *target], reference.env(cli_home), tmp_path)
            assert listed.returncode == 0, listed.stderr.decode()[-2000:]
            assert node["nodeId"] in listed.stdout.decode()
            invoked = await run(
                [
                    *cli,
                    "invoke",
                    "--node",
                    "interop-node",
                    "--command",
                    "system.which",
                    "--params",
                    '{"bins": ["sh"]}',
                    *target,
                ],
                reference.env(cli_home),
                tmp_path,
            )
            assert invoked.returncode == 0, invoked.stdout.decode()[-2000:]
            by_cli = json.loads(invoked.stdout)
            assert by_cli["ok"] is True
            assert by_cli["payload"]["bins"]["sh"].endswith("/sh")
            assert node["paired"] is True  # loopback: its device was approved on the spot
            assert node["platform"] == "linux"
            assert "system.which" in node["commands"]
            assert "system.execApprovals.get" not in node["commands"]  # never relayed
            async with open_client(gateway.url, token=TOKEN) as operator:
                result = await operator.call(
                    "node.invoke",
                    {
                        "nodeId": node["nodeId"],
                        "command": "system.which",
                        "params": {"bins": ["sh"]},
                        "idempotencyKey": "interop-which",
                    },
                    timeout=60,
                )
        nursery.cancel_scope.cancel()
    assert result["ok"] is True
    assert result["nodeId"] == node["nodeId"]
    assert result["payload"]["bins"]["sh"].endswith("/sh")

    challenge, connect = exchange.challenge(), exchange.connect_frame()
    assert challenge is not None
    assert connect is not None
    params = from_wire(ConnectParams, connect["params"])
    assert params.device is not None
    assert params.device.id == node["nodeId"] == device_id_of(params.device.public_key)
    proof = verify_device_proof(params, challenge["payload"]["nonce"], params.device.signed_at)
    assert isinstance(proof, DeviceProof), proof
    if os.environ.get("SMART_AGENT_NEO_INTEROP_UPDATE_FIXTURE"):
        FIXTURE.parent.mkdir(parents=True, exist_ok=True)
        document = {
            "source": "openclaw 2026.9.6, `openclaw node run` (headless node host), "
            "captured by `nox -s interop` through interop/capture.py",
            "challenge": challenge,
            "connect": connect,
        }
        FIXTURE.write_text(json.dumps(document, indent=2) + "\n")
