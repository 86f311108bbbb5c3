"""Inverse design by latent sampling: strategies, the post-processing funnel and per-case outputs.

``icrdesign sample --model results/model --dataset results/data/dataset.parquet --config CFG --case CASE
--out results/design/CASE`` runs one design case; ``sample_case`` does the same from Python.
"""

from icrdesign.sampling.cases import DesignCase, Window
from icrdesign.sampling.funnel import StrategyOutcome, apply_surrogate, process_strategy
from icrdesign.sampling.matching import CompositionIndex
from icrdesign.sampling.run import CaseResult, load_candidates, main, run_case, sample_case, summarise, write_case
from icrdesign.sampling.strategies import (
    BASELINES,
    STRATEGIES,
    LatentProposals,
    SeedPool,
    StrategySettings,
    expand_strategies,
    gradient_ascent,
    local_perturbation,
    random_prior,
    random_training,
)
from icrdesign.sampling.validity import ValidityCriteria, composition_problem, shortest_distance, structural_problem

__all__ = [
    "BASELINES", "STRATEGIES", "CaseResult", "CompositionIndex", "DesignCase", "LatentProposals", "SeedPool",
    "StrategyOutcome", "StrategySettings", "ValidityCriteria", "Window", "apply_surrogate", "composition_problem",
    "expand_strategies", "gradient_ascent", "load_candidates", "local_perturbation", "main", "process_strategy",
    "random_prior", "random_training", "run_case", "sample_case", "shortest_distance", "structural_problem",
    "summarise", "write_case",
]
