"""Config keys the runbooks and the reference use that this gateway does not implement yet.

Strict validation refuses every key the model does not know. For these, "unknown key" would
be wrong -- the key is right, the gateway is behind -- so the error says "not supported yet"
instead. The table is the one place to record them: whoever implements a key adds it to
``config/model.py`` and removes its entry here (a test fails while a key is in both).
Paths are dotted camelCase, as in the file; an entry covers everything below it.
"""

from __future__ import annotations

NOT_YET: dict[str, str] = {
    # top level
    "hooks.presets": "hook presets (gmail)",
    "hooks.transformsDir": "hook transform modules",
    "hooks.gmail": "the Gmail watcher",
    "env": "environment variables from the config",
    "discovery": "gateway discovery",
    "plugins": "plugins",
    "browser": "browser control",
    "cron": "scheduled jobs",
    "routing": "routing rules",
    "skills": "skills",
    "talk": "talk mode",
    "ui": "UI settings",
    "web": "the web channel",
    "wizard": "onboarding state",
    "meta": "config metadata",
    # gateway.*
    "gateway.auth.allowTailscale": "Tailscale identity auth",
    "gateway.auth.trustedProxy": "trusted-proxy auth",
    "gateway.http.securityHeaders": "extra HTTP security headers",
    "gateway.controlUi.allowInsecureAuth": "browser device identity (the Control UI signs in "
    "with the shared secret only)",
    "gateway.controlUi.dangerouslyDisableDeviceAuth": "browser device identity (the Control UI "
    "signs in with the shared secret only)",
}


def not_yet(path: str) -> str | None:
    """What the key at ``path`` is for, if it is known but not implemented yet."""
    return NOT_YET.get(path)


def message(path: str, what: str) -> str:
    return f"{path}: not supported yet ({what}); remove it for now"
