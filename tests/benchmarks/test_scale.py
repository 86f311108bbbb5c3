"""benchmarks/scale.py: the whole code path on tiny sizes, and the JSON it prints."""

from __future__ import annotations

import importlib.util
import json
import sys

import pytest

from workflow_runner import REPO

_spec = importlib.util.spec_from_file_location("scale_benchmark", REPO / "benchmarks" / "scale.py")
scale_benchmark = importlib.util.module_from_spec(_spec)
sys.modules["scale_benchmark"] = scale_benchmark
_spec.loader.exec_module(scale_benchmark)


def test_growth_exponent_is_the_log_log_slope():
    assert scale_benchmark.growth_exponent([10, 20, 40], [1.0, 2.0, 4.0]) == pytest.approx(1.0)
    assert scale_benchmark.growth_exponent([10, 20, 40], [1.0, 4.0, 16.0]) == pytest.approx(2.0)
    assert scale_benchmark.growth_exponent([10], [1.0]) is None
    assert scale_benchmark.at_target([10, 20], [1.0, 2.0]) == pytest.approx(4000.0)


@pytest.mark.slow
def test_tiny_run_prints_every_stage_with_equal_lengths(capsys):
    assert scale_benchmark.main(["--sizes", "12", "24", "--candidates", "4", "--fingerprint-sample", "2",
                                 "--jobs", "1"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert set(result) == {"stages", "extrapolated_hours_40k"}
    assert set(result["stages"]) == set(scale_benchmark.STAGES)
    for stage in result["stages"].values():
        assert set(stage) == {"sizes", "seconds", "peak_mb", "growth_exponent"}
        assert stage["sizes"] == [12, 24]
        assert len(stage["seconds"]) == len(stage["peak_mb"]) == len(stage["sizes"])
        assert all(seconds > 0 for seconds in stage["seconds"])
        assert isinstance(stage["growth_exponent"], float)
    hours = result["extrapolated_hours_40k"]
    assert set(hours) == {"2_cores", "32_cores"} and hours["32_cores"] <= hours["2_cores"]
