"""benchmarks/pipeline.py: rule attribution of benchmark files, busy time, overhead share."""

from __future__ import annotations

import importlib.util
import json
import os
import sys
from datetime import datetime
from pathlib import Path

from hypothesis import given
from hypothesis import strategies as st

from workflow_runner import REPO

_spec = importlib.util.spec_from_file_location("pipeline_benchmark", REPO / "benchmarks" / "pipeline.py")
pipeline_benchmark = importlib.util.module_from_spec(_spec)
sys.modules["pipeline_benchmark"] = pipeline_benchmark  # dataclasses look their module up there
_spec.loader.exec_module(pipeline_benchmark)
RuleRun = pipeline_benchmark.RuleRun

HEADER = "s\th:m:s\tmax_rss\tmax_vms\tmax_uss\tmax_pss\tio_in\tio_out\tmean_load\tcpu_time\n"


def _write_benchmark(path: Path, seconds: float, end: float) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(HEADER + f"{seconds}\t0:00:01\t10\t10\t10\t10\t0\t0\t50\t1\n")
    os.utime(path, (end, end))


def test_rule_names_come_from_the_workflow_files():
    names = pipeline_benchmark.workflow_rule_names()
    assert {"all", "dataset"} <= set(names)


def test_wildcard_benchmarks_are_summed_per_rule_and_overhead_is_the_idle_share(tmp_path):
    results = tmp_path / "results"
    bench = results / "benchmarks"
    # dataset 0-10 s, two parallel relax jobs 10-14 and 12-16 s, validation_table 20-21 s.
    _write_benchmark(bench / "dataset.tsv", 10.0, 1000.0 + 10)
    _write_benchmark(bench / "relax_Ef_-0.5_Ef_-0.5-local_perturbation-00001.tsv", 4.0, 1000.0 + 14)
    _write_benchmark(bench / "relax_Ef_-0.5_Ef_-0.5-local_perturbation-00002.tsv", 4.0, 1000.0 + 16)
    _write_benchmark(bench / "validation_table.tsv", 1.0, 1000.0 + 21)
    rules = ["dataset", "relax", "validation_table", "validation"]
    runs = pipeline_benchmark.read_rule_runs(results, rules)
    assert sorted(run.rule for run in runs) == ["dataset", "relax", "relax", "validation_table"]
    summary = pipeline_benchmark.summarize(results, wall_seconds=25.0, rule_names=rules)
    assert summary["stages"]["dataset"] == 10.0 and summary["stages"]["relax"] == 8.0
    assert summary["total_seconds"] == 25.0
    # Busy 0-16 and 20-21: 17 of 25 s.
    assert summary["overhead_share"] == round(8 / 25, 4)
    assert json.loads(json.dumps(summary)) == summary


def test_wall_time_comes_from_the_snakemake_run_log(tmp_path):
    results = tmp_path / "results"
    start = 1_700_000_000.0
    _write_benchmark(results / "benchmarks" / "dataset.tsv", 10.0, start + 15)
    log_dir = tmp_path / ".snakemake" / "log"
    log_dir.mkdir(parents=True)
    log = log_dir / f"{datetime.fromtimestamp(start).strftime('%Y-%m-%dT%H%M%S.%f')}.snakemake.log"
    log.write_text("")
    os.utime(log, (start + 20, start + 20))
    summary = pipeline_benchmark.summarize(results)
    assert abs(summary["total_seconds"] - 20.0) < 1e-3
    assert abs(summary["overhead_share"] - 0.5) < 1e-3


@given(st.lists(st.tuples(st.floats(0, 100), st.floats(0, 50)), min_size=1, max_size=20))
def test_busy_time_is_bounded_by_the_longest_job_the_sum_and_the_span(intervals):
    runs = [RuleRun("r", seconds, start + seconds) for start, seconds in intervals]
    busy = pipeline_benchmark.busy_seconds(runs)
    span = max(r.end for r in runs) - min(r.start for r in runs)
    tolerance = 1e-9 * (1 + span)
    assert max(r.seconds for r in runs) - tolerance <= busy <= sum(r.seconds for r in runs) + tolerance
    assert busy <= span + tolerance
