"""Which agents exist, and which model, workspace and limits each one runs with (pure).

With no ``agents.list`` there is one agent, ``main``. The default agent is the entry marked
``default: true``, else the first one. A model reference is ``<provider>/<model id>``; with
no ``model.primary`` the first model of the first configured provider is used, and with no
provider at all the built-in offline model answers.
"""

from __future__ import annotations

from pathlib import Path

import attrs

from ..config.model import Config, Provider, ToolPolicy
from ..errors import ModelConfigError, SessionKeyError
from .keys import DEFAULT_AGENT_ID, normalize_agent_id

OFFLINE_PROVIDER = "offline"
OFFLINE_MODEL = "builtin-echo"


@attrs.frozen
class AgentSpec:
    id: str
    name: str
    is_default: bool
    model_ref: str | None
    model_key: str  # the config key path that set model_ref, for error messages
    workspace: Path
    timeout_s: int
    max_tool_steps: int
    history_limit: int
    system_prompt: str | None
    tools: ToolPolicy


@attrs.frozen
class ModelChoice:
    provider_name: str
    provider: Provider | None  # None: the offline built-in model
    model_id: str
    max_tokens: int | None = None

    @property
    def label(self) -> str:
        return f"{self.provider_name}/{self.model_id}"


def agent_specs(config: Config, state_dir: Path) -> list[AgentSpec]:
    defaults = config.agents.defaults
    entries = config.agents.list_
    default_index = next((i for i, e in enumerate(entries) if e.default), 0)
    specs: list[AgentSpec] = []
    if not entries:
        specs.append(_spec(config, state_dir, DEFAULT_AGENT_ID, "Main", True, None))
        return specs
    seen: set[str] = set()
    for i, entry in enumerate(entries):
        try:
            agent_id = normalize_agent_id(entry.id)
        except SessionKeyError as exc:
            raise ModelConfigError(f"agents.list[{i}].id: {exc}") from None
        if agent_id in seen:
            raise ModelConfigError(f'agents.list[{i}].id: duplicate agent id "{agent_id}"')
        seen.add(agent_id)
        model_ref = entry.model.primary if entry.model else None
        key = f"agents.list[{i}].model.primary" if model_ref else None
        spec = _spec(config, state_dir, agent_id, entry.name or agent_id, i == default_index, key)
        specs.append(
            attrs.evolve(
                spec,
                model_ref=model_ref or spec.model_ref,
                workspace=_workspace(entry.workspace, state_dir, agent_id)
                if entry.workspace
                else spec.workspace,
                system_prompt=entry.system_prompt or defaults.system_prompt,
                tools=entry.tools or spec.tools,
            )
        )
    return specs


def _spec(
    config: Config,
    state_dir: Path,
    agent_id: str,
    name: str,
    is_default: bool,
    model_key: str | None,
) -> AgentSpec:
    d = config.agents.defaults
    return AgentSpec(
        id=agent_id,
        name=name,
        is_default=is_default,
        model_ref=d.model.primary,
        model_key=model_key or "agents.defaults.model.primary",
        workspace=_workspace(d.workspace, state_dir, agent_id),
        timeout_s=d.timeout_seconds,
        max_tool_steps=d.max_tool_steps,
        history_limit=d.history_limit,
        system_prompt=d.system_prompt,
        tools=ToolPolicy(),
    )


def _workspace(configured: str | None, state_dir: Path, agent_id: str) -> Path:
    if configured:
        return Path(configured).expanduser()
    suffix = "" if agent_id == DEFAULT_AGENT_ID else f"-{agent_id}"
    return state_dir / f"workspace{suffix}"


def default_agent_id(config: Config) -> str:
    entries = config.agents.list_
    chosen = next((e for e in entries if e.default), entries[0] if entries else None)
    return normalize_agent_id(chosen.id) if chosen else DEFAULT_AGENT_ID


def find_agent(config: Config, state_dir: Path, agent_id: str) -> AgentSpec | None:
    return next((s for s in agent_specs(config, state_dir) if s.id == agent_id), None)


def resolve_model(config: Config, spec: AgentSpec) -> ModelChoice:
    """The model ``spec`` runs with; raises :class:`ModelConfigError` naming the config key."""
    providers = config.models.providers
    ref = spec.model_ref
    if ref is None:
        for name, listed in providers.items():
            if listed.models:
                first = listed.models[0]
                return ModelChoice(name, listed, first.id, first.max_tokens)
        if providers:
            names = ", ".join(providers)
            raise ModelConfigError(
                f"{spec.model_key} is not set and no provider lists a model "
                f"(models.providers: {names}); set it to <provider>/<model id>"
            )
        return ModelChoice(OFFLINE_PROVIDER, None, OFFLINE_MODEL)
    name, sep, model_id = ref.partition("/")
    if not sep or not name or not model_id:
        raise ModelConfigError(f'{spec.model_key}: expected "<provider>/<model id>", got "{ref}"')
    provider = providers.get(name)
    if provider is None:
        known = ", ".join(providers) or "none configured"
        raise ModelConfigError(
            f'{spec.model_key}: unknown provider "{name}" (models.providers: {known})'
        )
    entry = next((m for m in provider.models if m.id == model_id), None)
    return ModelChoice(name, provider, model_id, entry.max_tokens if entry else None)
