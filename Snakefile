# icrdesign: inverse design of inorganic crystals.
# `snakemake --cores all` runs the whole chain on the embedded demo dataset;
# every rule calls the icrdesign library, no science lives here.

import sys
from pathlib import Path

sys.path.insert(0, str(Path(workflow.basedir) / "src"))

from snakemake.utils import min_version, validate

from icrdesign.config import merge_with_defaults

min_version("8.0")

# `--configfile` values are layered over the repository's config.yaml, then validated: a bad key
# or value stops the run here, before any rule, with a message naming the key.
_merged = merge_with_defaults(dict(config))
config.clear()
config.update(_merged)
validate(config, str(Path(workflow.basedir) / "workflow" / "schemas" / "config.schema.yaml"))

report: "workflow/report/workflow.rst"

RESULTS = "results"
PY = f"{sys.executable} -m"


def resources_for(rule_name):
    """Per-rule resources from config['resources'], falling back to its 'default' entry."""
    return {**config["resources"]["default"], **config["resources"].get(rule_name, {})}


include: "workflow/rules/common.smk"
include: "workflow/rules/dataset.smk"
include: "workflow/rules/encode.smk"
include: "workflow/rules/train.smk"
include: "workflow/rules/sample.smk"
include: "workflow/rules/validation.smk"
include: "workflow/rules/report.smk"


# Aggregation and target rules are cheap: on a cluster they run on the submitting node.
localrules: all, sample_all, paper_figures, validation_table


rule all:
    """The whole chain: dataset -> encode -> train -> sample -> relax -> DFT -> report."""
    default_target: True
    input:
        rules.paper_figures.input,
        f"{RESULTS}/report/summary.json",
        # Per-candidate results as targets: Snakemake regenerates a deleted intermediate file only
        # when a target needs it, and a deleted DFT result must rerun that one job.
        validation_results,
