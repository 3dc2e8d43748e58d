"""Which node commands the gateway relays (CONTROL-UI.md section 8, PROTOCOL.md 7.11). Pure.

    effective = declared & (platform defaults | gateway.nodes.allowCommands
                            - gateway.nodes.denyCommands)

Matching is on the exact command name. The platform comes from ``client.platform`` (and
``deviceFamily`` when the platform says nothing). Privacy-sensitive commands (camera
capture, screen recording, sending texts, writing contacts/calendars/reminders) are in no
default set: a person has to list them in ``allowCommands``. ``system.execApprovals.*`` is
never relayed, whatever the config says: a node's exec policy is not an operator's to flip
through the relay.
"""

from __future__ import annotations

from collections.abc import Iterable

import attrs

CANVAS = (
    "canvas.present",
    "canvas.hide",
    "canvas.navigate",
    "canvas.eval",
    "canvas.snapshot",
    "canvas.a2ui.push",
    "canvas.a2ui.pushJSONL",
    "canvas.a2ui.reset",
)
CAMERA = ("camera.list",)
LOCATION = ("location.get",)
NOTIFY = ("system.notify",)
NOTIFICATIONS = ("notifications.list",)
ANDROID_NOTIFICATIONS = ("notifications.list", "notifications.actions")
DEVICE = ("device.info", "device.status")
ANDROID_DEVICE = ("device.info", "device.status", "device.permissions", "device.health")
CONTACTS = ("contacts.search",)
CALENDAR = ("calendar.events",)
REMINDERS = ("reminders.list",)
PHOTOS = ("photos.latest",)
MOTION = ("motion.activity", "motion.pedometer")
SYSTEM_RUN = ("system.run", "system.run.prepare", "system.which")
BROWSER_PROXY = ("browser.proxy",)
SYSTEM = (*SYSTEM_RUN, *NOTIFY, *BROWSER_PROXY)

DANGEROUS = frozenset(
    {
        "camera.snap",
        "camera.clip",
        "screen.record",
        "contacts.add",
        "calendar.add",
        "reminders.add",
        "sms.send",
    }
)
NEVER_RELAYED_PREFIX = "system.execApprovals."

# Commands whose node.invoke needs operator.admin (PROTOCOL.md 6.3): they run programs or
# reach into files and browser profiles on the node's machine. (``system.which`` only looks
# binaries up on the node's PATH: write is enough, as with the reference's own CLI.)
ADMIN_COMMANDS = frozenset(
    {
        "system.run",
        "system.run.prepare",
        "browser.proxy",
        "browser.proxy.upload.v1",
        "fs.listDir",
        "terminal.upload",
    }
)
# Approving a node that declares any of these needs operator.admin (PROTOCOL.md 6.3).
ADMIN_TO_APPROVE = ADMIN_COMMANDS | {"system.which"}

_MOBILE = (*CANVAS, *CAMERA, *LOCATION, *CONTACTS, *CALENDAR, *REMINDERS, *PHOTOS, *MOTION)
PLATFORM_DEFAULTS: dict[str, frozenset[str]] = {
    "ios": frozenset({*_MOBILE, *DEVICE, *NOTIFY}),
    "android": frozenset({*_MOBILE, *ANDROID_NOTIFICATIONS, *NOTIFY, *ANDROID_DEVICE}),
    "macos": frozenset({*_MOBILE, *DEVICE, *SYSTEM}),
    "linux": frozenset(SYSTEM),
    "windows": frozenset(SYSTEM),
    "unknown": frozenset({*CANVAS, *CAMERA, *LOCATION, *NOTIFY}),
}

_PLATFORM_PREFIXES = (
    ("ios", ("ios", "ipados")),
    ("android", ("android",)),
    ("macos", ("mac", "darwin")),
    ("windows", ("win",)),
    ("linux", ("linux",)),
)
_FAMILY_TOKENS = (
    ("ios", ("iphone", "ipad", "ios")),
    ("android", ("android",)),
    ("macos", ("mac",)),
    ("windows", ("windows",)),
    ("linux", ("linux",)),
)


def platform_id(platform: str | None, device_family: str | None) -> str:
    """``ios|android|macos|windows|linux|unknown`` from what the node said about itself."""
    raw = (platform or "").strip().lower()
    for pid, prefixes in _PLATFORM_PREFIXES:
        if raw.startswith(prefixes):
            return pid
    family = (device_family or "").strip().lower()
    for pid, tokens in _FAMILY_TOKENS:
        if any(token in family for token in tokens):
            return pid
    return "unknown"


def never_relayed(command: str) -> bool:
    return command.startswith(NEVER_RELAYED_PREFIX)


@attrs.frozen
class CommandPolicy:
    """``gateway.nodes.allowCommands`` / ``denyCommands`` as a value."""

    allow: frozenset[str] = frozenset()
    deny: frozenset[str] = frozenset()

    @classmethod
    def of(cls, allow: Iterable[str], deny: Iterable[str]) -> CommandPolicy:
        return cls(
            frozenset(c.strip() for c in allow if c.strip()),
            frozenset(c.strip() for c in deny if c.strip()),
        )

    def allowlist(self, platform: str | None, device_family: str | None) -> frozenset[str]:
        base = PLATFORM_DEFAULTS[platform_id(platform, device_family)]
        return frozenset(c for c in (base | self.allow) - self.deny if not never_relayed(c))

    def effective(
        self, declared: Iterable[str], platform: str | None, device_family: str | None
    ) -> list[str]:
        """The declared commands the gateway will relay, in the node's order, deduplicated."""
        allowed = self.allowlist(platform, device_family)
        return [c for c in dict.fromkeys(d.strip() for d in declared) if c in allowed]

    def refusal(
        self, command: str, declared: list[str], platform: str | None, device_family: str | None
    ) -> tuple[str, str] | None:
        """``(reason, message)`` when ``command`` may not be relayed to this node."""
        if never_relayed(command):
            return (
                "command never relayed",
                f'node command not allowed: "{command}" is never relayed '
                "(a node's exec approvals are managed on the node)",
            )
        if command not in self.allowlist(platform, device_family):
            pid = platform_id(platform, device_family)
            if command in self.deny:
                why = "is blocked by gateway.nodes.denyCommands"
            elif command in DANGEROUS:
                why = "needs an explicit gateway.nodes.allowCommands entry"
            else:
                why = f'is not in the allowlist for platform "{pid}"'
            return "command not allowlisted", f'node command not allowed: "{command}" {why}'
        if not declared:
            return (
                "node did not declare commands",
                "node command not allowed: the node did not declare any commands",
            )
        if command not in declared:
            return (
                "command not declared by node",
                f"node command not allowed: the node (platform: {platform or 'unknown'}) "
                f'does not support "{command}"',
            )
        return None
