"""Inverse design by latent sampling: strategies, the post-processing funnel and per-case outputs.

``icrdesign sample --model results/model --dataset results/data/dataset.parquet --config CFG --case CASE
--out results/design/CASE`` runs one design case; ``sample_case`` does the same from Python. Design
cases, their windows and the success measures live in :mod:`icrdesign.cases`.
"""

from icrdesign.sampling.funnel import StrategyOutcome, apply_surrogate, process_strategy
from icrdesign.sampling.matching import CompositionIndex
from icrdesign.sampling.run import CaseResult, run_case, sample_case, summarise, write_case
from icrdesign.sampling.strategies import (
    STRATEGIES,
    LatentProposals,
    SeedPool,
    StrategySettings,
    expand_strategies,
    gradient_ascent,
    local_perturbation,
    random_prior,
    random_training,
    window_loss,
)
from icrdesign.sampling.validity import ValidityCriteria, composition_problem, structural_problem
from icrdesign.structure_checks import shortest_distance

__all__ = [
    "STRATEGIES", "CaseResult", "CompositionIndex", "LatentProposals", "SeedPool", "StrategyOutcome",
    "StrategySettings", "ValidityCriteria", "apply_surrogate", "composition_problem", "expand_strategies",
    "gradient_ascent", "local_perturbation", "process_strategy", "random_prior", "random_training", "run_case",
    "sample_case", "shortest_distance", "structural_problem", "summarise", "window_loss", "write_case",
]
