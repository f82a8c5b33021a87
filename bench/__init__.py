"""Benchmark scripts that print figures. ``python bench/run_all.py`` runs them all and rewrites BENCHMARKS.md.

Every service they use runs on 127.0.0.1: moto server for AWS and the project's Mantle emulator for
bedrock-mantle. They are scripts, never tests; only their pure helpers have unit tests.
"""
