"""Benchmarks: scripts that print a table (speed and memory are measured here, never in tests)."""
