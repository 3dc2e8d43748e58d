"""The scenarios of issue 7, one module per concern; each returns ``Measurement`` rows."""
