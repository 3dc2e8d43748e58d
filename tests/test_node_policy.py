"""The node command policy, pure (CONTROL-UI.md section 8, PROTOCOL.md 7.11).

effective = declared & (platform defaults | allowCommands - denyCommands); exact names;
dangerous commands need an explicit allow; system.execApprovals.* is never relayed.
"""

from __future__ import annotations

import pytest

from gateway.nodes.policy import DANGEROUS, CommandPolicy, platform_id

NONE = CommandPolicy()


@pytest.mark.parametrize(
    ("platform", "family", "expected"),
    [
        ("ios", None, "ios"),
        ("iPadOS 17.2", None, "ios"),
        ("android", None, "android"),
        ("macos 14.5", None, "macos"),
        ("darwin", None, "macos"),
        ("linux", None, "linux"),
        ("win32", None, "windows"),
        ("web", "iPhone", "ios"),
        ("", "Mac", "macos"),
        (None, None, "unknown"),
        ("plan9", None, "unknown"),
    ],
)
def test_platform_ids(platform: str | None, family: str | None, expected: str) -> None:
    assert platform_id(platform, family) == expected


def test_effective_is_declared_intersected_with_the_platform_defaults() -> None:
    declared = ["canvas.present", "camera.list", "system.run", "made.up"]
    assert NONE.effective(declared, "ios", None) == ["canvas.present", "camera.list"]
    assert NONE.effective(declared, "linux", None) == ["system.run"]


def test_effective_keeps_the_node_order_and_drops_duplicates() -> None:
    declared = ["canvas.hide", "canvas.present", "canvas.hide", " canvas.eval "]
    assert NONE.effective(declared, "android", None) == [
        "canvas.hide",
        "canvas.present",
        "canvas.eval",
    ]


@pytest.mark.parametrize("command", sorted(DANGEROUS))
def test_dangerous_commands_need_an_explicit_allow(command: str) -> None:
    assert NONE.effective([command], "ios", None) == []
    reason, message = NONE.refusal(command, [command], "ios", None) or ("", "")
    assert reason == "command not allowlisted"
    assert "gateway.nodes.allowCommands" in message
    allowed = CommandPolicy.of([command], [])
    assert allowed.effective([command], "ios", None) == [command]


def test_allow_adds_and_deny_wins() -> None:
    policy = CommandPolicy.of(["custom.thing", "camera.snap"], ["canvas.eval", "camera.snap"])
    declared = ["custom.thing", "camera.snap", "canvas.eval", "canvas.present"]
    assert policy.effective(declared, "ios", None) == ["custom.thing", "canvas.present"]
    reason, message = policy.refusal("canvas.eval", declared, "ios", None) or ("", "")
    assert reason == "command not allowlisted"
    assert "gateway.nodes.denyCommands" in message


@pytest.mark.parametrize("command", ["system.execApprovals.get", "system.execApprovals.set"])
def test_exec_approvals_are_never_relayed_even_if_allowed(command: str) -> None:
    policy = CommandPolicy.of([command], [])
    assert policy.effective([command], "macos", None) == []
    reason, message = policy.refusal(command, [command], "macos", None) or ("", "")
    assert reason == "command never relayed"
    assert "never relayed" in message


def test_refusal_reasons_in_order() -> None:
    assert NONE.refusal("canvas.present", ["canvas.present"], "ios", None) is None
    assert NONE.refusal("canvas.present", [], "ios", None) == (
        "node did not declare commands",
        "node command not allowed: the node did not declare any commands",
    )
    refused = NONE.refusal("canvas.hide", ["canvas.present"], "ios", None)
    assert refused is not None
    assert refused[0] == "command not declared by node"
    assert (
        refused[1]
        == 'node command not allowed: the node (platform: ios) does not support "canvas.hide"'
    )
    refused = NONE.refusal("system.run", ["system.run"], "ios", None)
    assert refused is not None
    assert refused[0] == "command not allowlisted"
    assert (
        refused[1]
        == 'node command not allowed: "system.run" is not in the allowlist for platform "ios"'
    )


def test_names_match_exactly() -> None:
    assert NONE.effective(["Canvas.Present", "canvas.present.extra"], "ios", None) == []
