"""Pipeline benchmark: wall time per Snakemake rule and the share of wall time spent outside rules.

    python benchmarks/pipeline.py                   # run the default demo from scratch in a temp dir
    python benchmarks/pipeline.py --configfile C    # the same with a config layered over config.yaml
    python benchmarks/pipeline.py --from-results    # read the last run's files in ./results

Prints one JSON line: {"stages": {RULE: seconds}, "total_seconds": s, "overhead_share": x}; a run from
scratch adds the seconds of the HTML report (`snakemake --report`) and the total with it.
`stages` sums the `s` column of every benchmark file of a rule (results/benchmarks/<rule>[_<wildcards>].tsv
or results/benchmarks/<rule>/...); `total_seconds` is the wall time of the run; overhead is the
part of it during which no rule was running (Snakemake start-up, DAG building, job scheduling),
from the union of the rules' [end - s, end] intervals (end: the benchmark file's mtime).
"""

from __future__ import annotations

import argparse
import csv
import json
import re
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
RULE_DEFINITION = re.compile(r"^(?:rule|checkpoint)\s+(\w+)\s*:", re.MULTILINE)
# Snakemake names its run logs after their start: .snakemake/log/2026-01-31T120000.123456.snakemake.log
RUN_LOG_START = re.compile(r"^(\d{4}-\d{2}-\d{2}T\d{6}\.\d+)\.snakemake\.log$")


@dataclass(frozen=True)
class RuleRun:
    rule: str
    seconds: float
    end: float  # epoch seconds

    @property
    def start(self) -> float:
        return self.end - self.seconds


def workflow_rule_names(repo: Path = REPO) -> list[str]:
    """Rule and checkpoint names defined in the Snakefile and workflow/rules/*.smk."""
    sources = [repo / "Snakefile", *sorted((repo / "workflow" / "rules").glob("*.smk"))]
    names = {name for path in sources if path.exists() for name in RULE_DEFINITION.findall(path.read_text())}
    return sorted(names)


def rule_of(benchmark: Path, benchmark_dir: Path, rule_names: list[str]) -> str:
    """The rule a benchmark file belongs to: its top folder, else the longest rule name prefixing its stem."""
    relative = benchmark.relative_to(benchmark_dir)
    if len(relative.parts) > 1:
        return relative.parts[0]
    stem = relative.name.removesuffix(".tsv")
    matches = [name for name in rule_names if stem == name or stem.startswith(name + "_")]
    return max(matches, key=len) if matches else stem


def read_rule_runs(results: Path, rule_names: list[str]) -> list[RuleRun]:
    benchmark_dir = results / "benchmarks"
    runs = []
    for path in sorted(benchmark_dir.rglob("*.tsv")):
        with path.open(newline="") as handle:
            rows = list(csv.DictReader(handle, delimiter="\t"))
        if not rows or "s" not in rows[0]:
            continue
        # Several rows when a rule was benchmarked with `repeat()`; the last is the latest run.
        seconds = float(rows[-1]["s"])
        runs.append(RuleRun(rule_of(path, benchmark_dir, rule_names), seconds, path.stat().st_mtime))
    return runs


def busy_seconds(runs: list[RuleRun]) -> float:
    """Length of the union of the rules' running intervals (parallel jobs count once)."""
    total, current_start, current_end = 0.0, None, None
    for run in sorted(runs, key=lambda r: r.start):
        if current_end is None or run.start > current_end:
            if current_end is not None:
                total += current_end - current_start
            current_start, current_end = run.start, run.end
        else:
            current_end = max(current_end, run.end)
    if current_end is not None:
        total += current_end - current_start
    return total


def snakemake_run_windows(workdir: Path) -> list[tuple[float, float]]:
    """(start, end) of every Snakemake run recorded in workdir/.snakemake/log."""
    windows = []
    for log in (workdir / ".snakemake" / "log").glob("*.snakemake.log"):
        match = RUN_LOG_START.match(log.name)
        if match:
            start = datetime.strptime(match.group(1), "%Y-%m-%dT%H%M%S.%f").timestamp()
            windows.append((start, log.stat().st_mtime))
    return windows


def wall_seconds_from_logs(workdir: Path, runs: list[RuleRun]) -> float:
    """Wall time of the Snakemake runs that produced the benchmark files (the span of the files without logs)."""
    first, last = min(r.start for r in runs), max(r.end for r in runs)
    # One second of slack: benchmark mtimes and log names come from different clocks' roundings.
    windows = [(s, e) for s, e in snakemake_run_windows(workdir) if s <= last + 1 and e >= first - 1]
    if not windows:
        return last - first
    return sum(e - s for s, e in windows)


def summarize(results: Path, wall_seconds: float | None = None, rule_names: list[str] | None = None) -> dict:
    """The benchmark JSON of the run whose results are in `results`; wall time from its logs unless given."""
    runs = read_rule_runs(results, workflow_rule_names() if rule_names is None else rule_names)
    if not runs:
        raise SystemExit(f"pipeline benchmark: no benchmark files under {results / 'benchmarks'}")
    stages: dict[str, float] = {}
    for run in runs:
        stages[run.rule] = stages.get(run.rule, 0.0) + run.seconds
    total = wall_seconds if wall_seconds is not None else wall_seconds_from_logs(results.parent, runs)
    overhead = max(0.0, total - busy_seconds(runs))
    return {
        "stages": {rule: round(seconds, 3) for rule, seconds in sorted(stages.items())},
        "total_seconds": round(total, 3),
        "overhead_share": round(overhead / total, 4) if total > 0 else 0.0,
    }


def run_from_scratch(configfile: Path | None, cores: str, snakemake: str) -> dict:
    with tempfile.TemporaryDirectory(prefix="icrdesign-bench-") as workdir:
        command = [snakemake, "-s", str(REPO / "Snakefile"), "--directory", workdir, "--cores", cores]
        if configfile is not None:
            command += ["--configfile", str(configfile.resolve())]
        started = time.perf_counter()
        completed = subprocess.run(command, capture_output=True, text=True)
        wall = time.perf_counter() - started
        if completed.returncode != 0:
            sys.stderr.write(completed.stdout[-4000:] + completed.stderr[-4000:])
            raise SystemExit(f"pipeline benchmark: snakemake failed with exit code {completed.returncode}")
        summary = summarize(Path(workdir) / "results", wall_seconds=wall)
        # The README's command goes on to the HTML report; time it too.
        started = time.perf_counter()
        subprocess.run(command + ["--report", str(Path(workdir) / "results" / "report.html")],
                       capture_output=True, text=True, check=True)
        summary["html_report_seconds"] = round(time.perf_counter() - started, 3)
        summary["with_html_report_seconds"] = round(wall + summary["html_report_seconds"], 3)
        return summary


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--from-results", action="store_true", help="read ./results of the last run instead of running")
    parser.add_argument("--results", type=Path, default=Path("results"), help="results folder for --from-results")
    parser.add_argument("--configfile", type=Path, default=None, help="config layered over config.yaml")
    parser.add_argument("--cores", default="all")
    parser.add_argument("--snakemake", default=str(Path(sys.executable).parent / "snakemake"))
    args = parser.parse_args(argv)
    if args.from_results:
        summary = summarize(args.results.resolve())
    else:
        summary = run_from_scratch(args.configfile, args.cores, args.snakemake)
    print(json.dumps(summary))
    return 0


if __name__ == "__main__":
    sys.exit(main())
