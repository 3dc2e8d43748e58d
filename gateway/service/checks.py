"""What a doctor check is, and the facts every check reads (gathered once per run)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Literal

import attrs

from ..config.load import Loaded, load_file
from ..config.paths import Paths
from ..errors import ConfigError
from .control import driver_for
from .errors import ManagerUnavailableError, ServiceError
from .host import Host
from .identity import Identity
from .installed import InstalledService, parse, read_text
from .runtime_view import ServiceRuntime
from .status import pick_identity

Status = Literal["ok", "warn", "fail"]


@attrs.frozen
class Check:
    """One finding. ``fix`` repairs it and returns what it changed, in words."""

    id: str
    status: Status
    message: str
    fix: Callable[[], str] | None = attrs.field(default=None, eq=False, repr=False)

    @property
    def fixable(self) -> bool:
        return self.fix is not None and self.status != "ok"


@attrs.define
class Context:
    host: Host
    paths: Paths
    loaded: Loaded | None = None
    config_error: ConfigError | None = None
    identity: Identity | None = None
    installed: InstalledService | None = None
    unit_text: str | None = None
    runtime: ServiceRuntime | None = None
    manager_error: str | None = None

    @classmethod
    def build(cls, host: Host, paths: Paths) -> Context:
        ctx = cls(host, paths)
        try:
            ctx.loaded = load_file(paths.config_path, host.env)
        except ConfigError as exc:
            ctx.config_error = exc
        try:
            ctx.identity = pick_identity(host, paths)
        except ServiceError:
            return ctx
        ctx.unit_text = read_text(ctx.identity.path)
        if ctx.unit_text is not None:
            ctx.installed = parse(ctx.identity.manager, ctx.unit_text)
            driver = driver_for(host, ctx.identity, paths)
            try:
                driver.connect()
                ctx.runtime = driver.runtime(ctx.identity)
            except ManagerUnavailableError as exc:
                ctx.manager_error = exc.message
        return ctx
