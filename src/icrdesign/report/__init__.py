"""Reports: the paper's figures (S1-S5), success rates with 95% Wilson intervals, structural
dissimilarity to the training set, summary.json / summary.md.

Notebook use::

    from icrdesign.report import dissimilarity, build_report
    dissimilarity(structure_a, structure_b)          # fingerprint distance, 0 = same structure type
    build_report(config, "results", "results/report")

Windows, success tests, rates and lifts are :mod:`icrdesign.cases`'s, shared with sampling.
"""

from icrdesign.report.build import FIGURES, build_report, dissimilarity_table, structure_type
from icrdesign.report.similarity import dissimilarity, fingerprint, fingerprints, nearest_neighbours

__all__ = [
    "FIGURES",
    "build_report",
    "dissimilarity",
    "dissimilarity_table",
    "fingerprint",
    "fingerprints",
    "nearest_neighbours",
    "structure_type",
]
