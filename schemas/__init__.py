"""Generated JSON Schemas for the gateway protocol (see `nox -s schemas`)."""
