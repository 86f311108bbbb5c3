# icrdesign: inverse design of inorganic crystals.
# `snakemake --cores all` runs the whole chain on the embedded demo dataset; every rule calls the
# icrdesign library through its command line, no science lives here.

from snakemake.utils import min_version

min_version("8.0")


include: "workflow/rules/common.smk"
include: "workflow/rules/config.smk"
include: "workflow/rules/dataset.smk"
include: "workflow/rules/encode.smk"
include: "workflow/rules/train.smk"
include: "workflow/rules/sample.smk"
include: "workflow/rules/validation.smk"
include: "workflow/rules/report.smk"


report: "workflow/report/workflow.rst"


# Aggregation and target rules are cheap: on a cluster they run on the submitting node.
localrules: all, stage_config, sample_all, paper_figures, validation_table, dft_reference_cache


rule all:
    """The whole chain: dataset -> encode -> train -> sample -> relax -> DFT -> report."""
    default_target: True
    input:
        rules.paper_figures.input,
        f"{RESULTS}/report/summary.json",
        # Per-candidate results as targets: Snakemake regenerates a deleted intermediate file only
        # when a target needs it, and a deleted DFT result must rerun that one job.
        **VALIDATION_PLAN.per_case(VALIDATION_PLAN.result_paths),
