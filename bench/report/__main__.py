"""Rewrite docs/benchmarks.md from the results already in bench/results/ (no benchmark runs).

    python -m bench.report
"""

from __future__ import annotations

from bench.common.output import ROOT
from bench.report.page import write_report

if __name__ == "__main__":
    print(f"wrote {write_report().relative_to(ROOT)}")
