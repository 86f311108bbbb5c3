"""Rules `report` / `paper_figures` on hand-made inputs, and the Snakemake HTML report in headless Chromium."""

from __future__ import annotations

import base64
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import pytest
from matplotlib.image import imread
from report_fixtures import make_results, write_config

from workflow_runner import REPO
from icrdesign.report import FIGURES

SNAKEMAKE = Path(sys.executable).with_name("snakemake")
# The repository Snakefile's preamble, with only the report rules included, so the hand-made inputs
# are taken as given instead of being rebuilt by the upstream stages.
HARNESS = f'''
import sys
sys.path.insert(0, "{REPO}/src")
include: "{REPO}/workflow/rules/common.smk"
include: "{REPO}/workflow/rules/config.smk"
include: "{REPO}/workflow/rules/report.smk"
report: "{REPO}/workflow/report/workflow.rst"
rule all:
    input: rules.paper_figures.input, rules.report.output.summary
'''
CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                  "--disable-component-update", "--disable-sync", "--window-size=1400,1000",
                  "--virtual-time-budget=10000"]
# Opens one result the way a click in the report's menu does (App.setView in Snakemake's report app).
SHOW_RESULT = """<script>setTimeout(() => {{
  const path = Object.keys(results).find(p => p.endsWith("{name}"));
  const kind = path.endsWith(".png") ? "img" : "html";
  app.setView({{navbarMode: "resultinfo", content: kind, contentPath: results[path].data_uri, resultPath: path}});
}}, 500);</script></body>"""


def snakemake(workdir: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(SNAKEMAKE), "-s", str(workdir / "Snakefile"), "--directory", str(workdir), "--configfile",
         str(workdir / "config.yaml"), "--cores", "2", *args],
        capture_output=True, text=True, timeout=900,
    )


def chromium(page: Path, *args: str) -> subprocess.CompletedProcess:
    with tempfile.TemporaryDirectory() as profile:
        return subprocess.run(
            [shutil.which("chromium"), *CHROMIUM_FLAGS, f"--user-data-dir={profile}", *args, page.as_uri()],
            capture_output=True, text=True, timeout=180,
        )


@pytest.mark.slow
@pytest.mark.skipif(shutil.which("chromium") is None, reason="needs Debian's chromium (scripts/setup.sh)")
def test_snakemake_report_shows_every_figure(tmp_path):
    make_results(tmp_path)
    write_config(tmp_path / "config.yaml", cases=["Ef_-0.5", "Eg_1.5"], dpi=80)
    (tmp_path / "Snakefile").write_text(HARNESS)

    run = snakemake(tmp_path, "all")
    assert run.returncode == 0, run.stderr[-3000:]
    report_dir = tmp_path / "results" / "report"
    for name in FIGURES:
        assert (report_dir / f"{name}.png").stat().st_size > 0 and (report_dir / f"{name}.pdf").stat().st_size > 0
    assert (tmp_path / "results" / "benchmarks" / "report.tsv").exists()

    html_path = tmp_path / "results" / "report.html"
    run = snakemake(tmp_path, "--report", str(html_path))
    assert run.returncode == 0, run.stderr[-3000:]
    html = html_path.read_text()
    for caption in ["Latent means of the encoded crystals", "one box per tier", "minimum Euclidean distance",
                    "Success rate per design case"]:  # captions from workflow/report/*.rst
        assert caption in html

    for name in [f"{figure}.png" for figure in FIGURES] + ["summary.html"]:
        page = tmp_path / f"show_{name}.html"
        head, tail = html.rsplit("</body>", 1)  # the last one: the page's scripts contain the string too
        page.write_text(head + SHOW_RESULT.format(name=name) + tail)
        dom = chromium(page, "--dump-dom").stdout
        element = "img" if name.endswith(".png") else "iframe"  # how the report app displays each kind
        shown = re.findall(rf'<{element}[^>]*src="data:[^"]*base64,([^"]+)"', dom)
        expected = (report_dir / name).read_bytes()
        assert any(base64.b64decode(data) == expected for data in shown), f"{name} not displayed"

    screenshot = tmp_path / "S3.png"
    page = tmp_path / "show_S3_boxplots.png.html"
    chromium(page, f"--screenshot={screenshot}")
    pixels = imread(screenshot)
    assert pixels.shape[0] >= 900 and np.std(pixels[..., :3]) > 0.05  # not a blank page
