"""Benchmark suite of ``minions_actors`` against raw pykka, Thespian, Ray and DBOS.

Run ``python -m bench`` (full run, under 15 minutes), ``python -m bench --quick`` (about a
minute) or ``python -m bench --smoke`` (a few seconds, used by the tests). See
``bench/README.md`` and ``docs/benchmarks.md``.
"""

from __future__ import annotations
