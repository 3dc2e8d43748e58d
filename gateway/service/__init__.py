"""Service management: rendering units from ``units/``, the command runner, service control,
status gathering and doctor checks. Pure parts (identity, spec, render, classify, plans) are
kept apart from the thin drivers that run ``systemctl``/``launchctl``/``loginctl``.
"""
