"""The chaos suite: faults injected into a private Zuimei stack under a steady vote load.

    .venv/bin/python -m bench.chaos [--quick] [--seconds N] [--rate R] [--recovery S] [--keep]

docs/chaos.md describes each fault, what it proves and how to read the figures.
"""
