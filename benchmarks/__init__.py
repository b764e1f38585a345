"""agentkeep's benchmark suite: W1-W7 through the public API and the raw driver, same run.

Run with ``python -m benchmarks --scale small|full [--backend sqlite|postgres|both]``.
See docs/performance.md.
"""
