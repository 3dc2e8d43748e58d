"""Service templates (systemd unit, launchd plist), shipped as package data ``gateway.units``."""
