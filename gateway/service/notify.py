"""sd_notify without a dependency: one datagram to ``$NOTIFY_SOCKET``.

The unit is ``Type=notify``: ``READY=1`` goes out once the port is bound (so
``systemctl start``/``restart`` return only when the gateway really listens, and report a
failed start), ``STOPPING=1`` when a stop begins. Outside systemd the variable is unset and
every call is a no-op. The variable is removed from our environment on first use, as
``sd_notify(unset_environment=1)`` does, so processes the gateway starts later cannot speak
for it.
"""

from __future__ import annotations

import logging
import os
import socket
from collections.abc import MutableMapping

log = logging.getLogger("gateway.service")

_address: str | None = None


def _socket_address(env: MutableMapping[str, str]) -> str | None:
    global _address
    raw = env.pop("NOTIFY_SOCKET", None)
    if raw:
        _address = raw
    return _address


def notify(state: str, env: MutableMapping[str, str] | None = None) -> bool:
    """Send ``state`` (``"READY=1"``, ``"STOPPING=1"``, ...); False when not supervised."""
    address = _socket_address(os.environ if env is None else env)
    if not address or not address.startswith(("/", "@")):
        return False  # unset, or a transport we do not speak (vsock)
    target = "\0" + address[1:] if address.startswith("@") else address
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC) as sock:
            sock.connect(target)
            sock.sendall(state.encode())
    except OSError as exc:
        log.warning("sd_notify %s to %s failed: %s", state.split("=")[0], address, exc)
        return False
    return True
