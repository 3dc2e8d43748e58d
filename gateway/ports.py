"""Who listens on a TCP port, without lsof: ``/proc/net/tcp{,6}`` and ``/proc/<pid>/fd``.

The parsers are pure. :func:`port_listeners` maps each listening socket's inode to the
process holding it by reading ``/proc/*/fd`` links; processes of other users cannot be read
without privileges, so their owner is reported as unknown rather than guessed. Where there
is no ``/proc`` (macOS) a loopback connect tells busy from free, owner unknown.
"""

from __future__ import annotations

import ipaddress
import itertools
import os
import socket
from pathlib import Path

import attrs

from .config.paths import resolve_paths
from .errors import GatewayError

LISTEN = "0A"


@attrs.frozen
class Listener:
    address: str
    port: int
    inode: int
    uid: int


@attrs.frozen
class PortListener:
    address: str
    pid: int | None = None
    command: str | None = None
    config_path: str | None = None  # the config a gateway process runs with, if readable


def _ipv4(hex_addr: str) -> str:
    return str(ipaddress.IPv4Address(bytes.fromhex(hex_addr)[::-1]))


def _ipv6(hex_addr: str) -> str:
    raw = bytes.fromhex(hex_addr)
    # four 32-bit words, each in host (little-endian) order
    ordered = b"".join(raw[i : i + 4][::-1] for i in range(0, 16, 4))
    return f"[{ipaddress.IPv6Address(ordered).compressed}]"


def parse_proc_net(text: str, *, ipv6: bool = False) -> list[Listener]:
    """Listening sockets in one ``/proc/net/tcp`` or ``tcp6`` table."""
    found = []
    for line in text.splitlines()[1:]:
        fields = line.split()
        if len(fields) < 10 or fields[3] != LISTEN:
            continue
        addr_hex, _, port_hex = fields[1].partition(":")
        try:
            address = _ipv6(addr_hex) if ipv6 else _ipv4(addr_hex)
            port = int(port_hex, 16)
            found.append(Listener(f"{address}:{port}", port, int(fields[9]), int(fields[7])))
        except ValueError:
            continue
    return found


def listeners(proc: Path) -> list[Listener] | None:
    """Every listening TCP socket on the machine, or ``None`` if ``/proc/net`` is unreadable."""
    tables = []
    for name, ipv6 in (("tcp", False), ("tcp6", True)):
        try:
            tables.append(parse_proc_net((proc / "net" / name).read_text(), ipv6=ipv6))
        except OSError:
            continue
    if not tables:
        return None
    return [entry for table in tables for entry in table]


def socket_owners(proc: Path, inodes: set[int]) -> dict[int, int]:
    """inode -> pid for the sockets in ``inodes`` that a readable process holds."""
    wanted = {f"socket:[{inode}]": inode for inode in inodes}
    owners: dict[int, int] = {}
    try:
        pids = [int(entry) for entry in os.listdir(proc) if entry.isdigit()]
    except OSError:
        return owners
    for pid in pids:
        fd_dir = proc / str(pid) / "fd"
        try:
            fds = os.listdir(fd_dir)
        except OSError:
            continue  # gone, or another user's process
        for fd in fds:
            try:
                link = os.readlink(fd_dir / fd)
            except OSError:
                continue
            inode = wanted.get(link)
            if inode is not None:
                owners.setdefault(inode, pid)
        if len(owners) == len(wanted):
            break
    return owners


def command_line(proc: Path, pid: int) -> str | None:
    try:
        raw = (proc / str(pid) / "cmdline").read_bytes()
    except OSError:
        return None
    return " ".join(part.decode(errors="replace") for part in raw.split(b"\0") if part) or None


def port_listeners(port: int, proc: Path = Path("/proc")) -> list[PortListener] | None:
    """Who listens on ``port`` (any address); ``None`` when it cannot be told at all."""
    table = listeners(proc)
    if table is None:
        return _connect_probe(port)
    matching = [entry for entry in table if entry.port == port]
    owners = socket_owners(proc, {entry.inode for entry in matching}) if matching else {}
    result = []
    for entry in matching:
        pid = owners.get(entry.inode)
        command = command_line(proc, pid) if pid else None
        config = gateway_config_path(proc, pid) if pid and looks_like_gateway(command) else None
        result.append(PortListener(entry.address, pid, command, config))
    return result


def _environ(proc: Path, pid: int) -> dict[str, str]:
    try:
        raw = (proc / str(pid) / "environ").read_bytes()
    except OSError:
        return {}
    pairs = (item.decode(errors="replace").partition("=") for item in raw.split(b"\0") if item)
    return {key: value for key, sep, value in pairs if sep}


def gateway_config_path(proc: Path, pid: int) -> str | None:
    """The config file a running gateway uses: its ``--profile``/``--dev`` flags and its
    environment, resolved exactly as the CLI resolves them. ``None`` when unreadable."""
    try:
        raw = (proc / str(pid) / "cmdline").read_bytes()
    except OSError:
        return None
    args = [part.decode(errors="replace") for part in raw.split(b"\0")]
    env = _environ(proc, pid)
    profile = None
    for i, arg in enumerate(args):
        if arg == "--dev":
            profile = "dev"
        elif arg == "--profile" and i + 1 < len(args):
            profile = args[i + 1]
        elif arg.startswith("--profile="):
            profile = arg.split("=", 1)[1]
    home = Path(env.get("HOME") or Path.home())
    try:
        return str(resolve_paths(profile, env, home).config_path)
    except GatewayError:
        return None


def _connect_probe(port: int) -> list[PortListener] | None:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return [PortListener(f"127.0.0.1:{port}")]
    except ConnectionRefusedError:
        return []
    except OSError:
        return None


def looks_like_gateway(command: str | None) -> bool:
    """Process identity: our console script, or ``python -m gateway``. Whole words only --
    a path that merely contains the product name (a checkout dir) does not count."""
    if not command:
        return False
    words = command.split()
    script = any(w.rsplit("/", 1)[-1] == "smart-agent-neo" for w in words[:2])
    module = any(a == "-m" and b == "gateway" for a, b in itertools.pairwise(words))
    return script or module


def describe(listener: PortListener) -> str:
    who = f"pid {listener.pid}" if listener.pid is not None else "a process we cannot see"
    return f"{who} ({listener.command})" if listener.command else who


def pid_alive(pid: int) -> bool:
    """Is ``pid`` a running process (a zombie counts as gone)?"""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return True
    return state != "Z"
