"""``doctor``: local checks of config, secrets, state, lock, service and ports; ``--fix``.

Each check returns a :class:`Check` (``ok``/``warn``/``fail``) and, when the problem has a
safe repair, a ``fix`` that performs it and says what it changed. Doctor never rewrites the
user's config file (one exception: it strips a ``/bot<TOKEN>`` pasted at the end of a
Telegram API root, changing only that value -- CHANNELS.md 1.1), never kills a process and
never touches a lock a live gateway holds.
After fixing, every check runs again, so the report shows the state reached, not the hope.
"""

from __future__ import annotations

from collections.abc import Callable

import attrs

from ..config.paths import Paths
from ..errors import GatewayError
from .checks import Check, Context
from .checks_channels import check_channels
from .checks_files import (
    check_config,
    check_lock,
    check_permissions,
    check_state_dir,
    check_token,
)
from .checks_service import (
    check_duplicates,
    check_linger,
    check_manager,
    check_port,
    check_profiles,
    check_service,
)
from .host import Host


@attrs.frozen
class DoctorResult:
    checks: list[Check]
    changes: list[str]

    @property
    def ok(self) -> bool:
        return all(c.status != "fail" for c in self.checks)


CHECKS: tuple[Callable[[Context], Check], ...] = (
    check_state_dir,  # first: the fixes below write into it
    check_config,
    check_permissions,
    check_token,
    check_lock,
    check_service,
    check_manager,
    check_linger,
    check_port,
    check_duplicates,
    check_profiles,
    check_channels,
)


def run_checks(host: Host, paths: Paths) -> list[Check]:
    ctx = Context.build(host, paths)
    return [check(ctx) for check in CHECKS]


def doctor(
    host: Host, paths: Paths, *, fix: bool = False, only: frozenset[str] | None = None
) -> DoctorResult:
    """``only``: fix just these checks (``--generate-gateway-token`` = ``{"auth.token"}``)."""
    checks = run_checks(host, paths)
    if not fix:
        return DoctorResult(checks, [])
    changes = []
    for check in checks:
        if not check.fixable or check.fix is None:
            continue
        if only is not None and check.id not in only:
            continue
        try:
            changes.append(check.fix())
        except (GatewayError, OSError) as exc:
            changes.append(f"could not fix {check.id}: {exc}")
    return DoctorResult(run_checks(host, paths) if changes else checks, changes)
