"""Fill the templates in ``units/`` from a :class:`ServiceSpec` (pure apart from reading the
packaged template text).

systemd escaping, per systemd.service(5)/systemd.unit(5): ``%`` starts a specifier
everywhere, so it is doubled; ``$`` expands variables in ``ExecStart=`` arguments (not in
the executable's path), so it is doubled there; an argument with whitespace, quotes,
backslashes or ``;`` is double-quoted with ``\\`` and ``"`` escaped, and so is an
``Environment=`` assignment that needs it (a plain one is written bare, as the runbooks show
it). A newline cannot be expressed in a unit line at all, so a value containing one is refused.
"""

from __future__ import annotations

import functools
import re
import string
from collections.abc import Mapping
from xml.sax.saxutils import escape as xml_escape

from .. import packagedata
from .errors import ServiceError
from .spec import ServiceSpec

SYSTEMD_TEMPLATE = "systemd.service.in"
LAUNCHD_TEMPLATE = "launchd.plist.in"
_NEEDS_QUOTES = re.compile(r"[\s\"'\\;]")


@functools.cache
def template(name: str) -> str:
    return packagedata.read("gateway.units", "units", name)


def fill(text: str, values: Mapping[str, str]) -> str:
    """``string.Template`` substitution; a line holding only a placeholder that renders to
    nothing is dropped, so optional lines (``User=``) leave no gap."""
    kept = []
    for line in text.splitlines():
        bare = line.strip()
        if bare.startswith("${") and bare.endswith("}") and values.get(bare[2:-1]) == "":
            continue
        kept.append(line)
    return string.Template("\n".join(kept) + "\n").substitute(values)


def _single_line(value: str) -> str:
    if "\n" in value or "\r" in value:
        raise ServiceError(f"cannot write a unit value containing a line break: {value!r}")
    return value


def _specifiers(value: str) -> str:
    return _single_line(value).replace("%", "%%")


def exec_arg(arg: str, *, executable: bool = False) -> str:
    """One ``ExecStart=`` word. The executable itself gets no ``$`` expansion from systemd,
    and a quote or backslash in its path is refused outright, so we refuse it first."""
    if executable and ('"' in arg or "\\" in arg):
        raise ServiceError(
            f"systemd cannot run a program whose path contains a quote or backslash: {arg}",
            hints=["install smart-agent-neo under a plainer path"],
        )
    arg = _specifiers(arg)
    if not executable:
        arg = arg.replace("$", "$$")
    if arg and not _NEEDS_QUOTES.search(arg):
        return arg
    return '"' + arg.replace("\\", "\\\\").replace('"', '\\"') + '"'


def environment_line(key: str, value: str) -> str:
    """``Environment=KEY=value`` as the runbooks write it; quoted only when the value needs
    it (whitespace, quotes, backslashes), so a plain line reads and greps as documented."""
    assignment = _specifiers(f"{key}={value}")
    if not _NEEDS_QUOTES.search(assignment):
        return f"Environment={assignment}"
    return 'Environment="' + assignment.replace("\\", "\\\\").replace('"', '\\"') + '"'


def render_systemd(spec: ServiceSpec, text: str | None = None) -> str:
    scope = spec.identity.scope
    return fill(
        text if text is not None else template(SYSTEMD_TEMPLATE),
        {
            "description": _specifiers(spec.description),
            "exec_start": " ".join(
                exec_arg(a, executable=i == 0) for i, a in enumerate(spec.program_arguments)
            ),
            "working_directory": _specifiers(spec.working_directory),
            "user_line": f"User={_specifiers(spec.user)}" if spec.user else "",
            "timeout_stop_sec": str(spec.timeout_stop_sec),
            "environment": "\n".join(environment_line(k, v) for k, v in spec.environment),
            "environment_file": _specifiers(spec.environment_file),
            "wanted_by": "multi-user.target" if scope == "system" else "default.target",
        },
    )


def _xml(value: str) -> str:
    return xml_escape(value)


def render_launchd(spec: ServiceSpec, text: str | None = None) -> str:
    return fill(
        text if text is not None else template(LAUNCHD_TEMPLATE),
        {
            "label": _xml(spec.identity.name),
            "description": _xml(spec.description),
            "program_arguments": "\n".join(
                f"    <string>{_xml(a)}</string>" for a in spec.program_arguments
            ),
            "working_directory": _xml(spec.working_directory),
            "timeout_stop_sec": str(spec.timeout_stop_sec),
            "stdout_path": _xml(spec.stdout_path),
            "stderr_path": _xml(spec.stderr_path),
            "environment": "\n".join(
                f"    <key>{_xml(k)}</key>\n    <string>{_xml(v)}</string>"
                for k, v in spec.environment
            ),
        },
    )


def render(spec: ServiceSpec) -> str:
    if spec.identity.manager == "launchd":
        return render_launchd(spec)
    return render_systemd(spec)
