"""Benchmarks for the gateway: a real gateway process, separate load-generator processes,
and the stack's ceiling measured in the same run. ``python -m bench --help``; see
BENCHMARKS.md for the latest figures and what each scenario measures.

Not shipped in the wheel (like ``tests/``): it runs from the source tree.
"""
