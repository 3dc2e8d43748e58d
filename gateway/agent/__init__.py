"""Agent runs: sessions and transcripts, model providers, tools, and the run service.

service.py        AgentService: starts, tracks, aborts and drains runs (the trio driver)
run.py            Run: one run's state, event seq, outcome (no I/O)
turns.py          the tool-call loop: model -> tools -> model, bounded steps
dedupe.py         idempotency cache (clock passed in)
agents.py         which agents exist and which model each uses (pure, from Config)
keys.py           session keys ``agent:<agentId>:<key>`` and their file names (pure)
transcript.py     transcript records <-> model history / chat.history (pure)
store.py          transcripts on disk: JSON lines, atomic appends, listing
providers/        one module per wire format + the offline built-in model
tools/            the tool registry, policy, and the built-in safe tools
"""
