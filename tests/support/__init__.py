"""Helpers shared by tests and benchmarks: real services started on free ports."""
