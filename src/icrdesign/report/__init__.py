"""Reports: the paper's figures (S1-S5), success rates with 95% Wilson intervals, structural
dissimilarity to the training set, summary.json / summary.md.

Notebook use::

    from icrdesign.report import dissimilarity, build_report
    dissimilarity(structure_a, structure_b)          # fingerprint distance, 0 = same structure type
    build_report(config, "results", "results/report")
"""

from icrdesign.report.build import FIGURES, build_report, dissimilarity_table, structure_type
from icrdesign.report.cli import main
from icrdesign.report.similarity import dissimilarity, fingerprint, fingerprints, nearest_neighbours
from icrdesign.report.success import case_windows, evaluate, success_rate, wilson_interval

__all__ = [
    "FIGURES",
    "build_report",
    "case_windows",
    "dissimilarity",
    "dissimilarity_table",
    "evaluate",
    "fingerprint",
    "fingerprints",
    "main",
    "nearest_neighbours",
    "structure_type",
    "success_rate",
    "wilson_interval",
]
