# Report: the paper's figures S1-S5, success rates with confidence intervals and structural
# dissimilarity (icrdesign.report). Every figure and the summary table go into
# `snakemake --report results/report.html` with the captions in workflow/report/.
#
# Fingerprints are computed in jobs of their own, off the report's path: the training split's in
# shards of `report.fingerprint_shard_size` crystals that depend only on the dataset and the split
# (so they run beside training; a checkpoint, because the number of shards follows from the
# dataset), each case's candidates' beside validation. Every training fingerprint is cached per
# crystal in results/fingerprints/cache (created by the checkpoint and extended, never deleted, by
# the shards), so a rerun or a grown dataset computes only crystals not seen before.

from icrdesign.artefacts.fingerprints import shard_file, shard_files
from icrdesign.validation.funnel import FUNNEL_SUMMARY, FUNNEL_TABLE, RELAXED_FOLDER

FINGERPRINTS = f"{RESULTS}/fingerprints"
# The candidates' fingerprints, one file per design case: what the report reads.
CANDIDATE_FINGERPRINTS = expand(f"{FINGERPRINTS}/candidates/{{case}}.npz", case=config["sampling"]["cases"])


checkpoint fingerprint_plan:
    """How many shards the training split's fingerprints are cut into; creates the shards' cache."""
    input:
        dataset=f"{RESULTS}/data/dataset.parquet",
        config=stage_config("split"),
    output:
        plan=f"{FINGERPRINTS}/train/plan.json",
        cache=update(directory(f"{FINGERPRINTS}/cache")),
    params:
        icrdesign=ICRDESIGN,
        shard_size=config["report"]["fingerprint_shard_size"],
    log:
        f"{RESULTS}/logs/fingerprint_plan.log",
    benchmark:
        f"{RESULTS}/benchmarks/fingerprint_plan.tsv"
    conda:
        CONDA_ENV
    shell:
        "{params.icrdesign} fingerprints --dataset {input.dataset} --config {input.config} "
        "--shard-size {params.shard_size} --plan {output.plan} --cache {output.cache} > {log} 2>&1"


rule fingerprint_shard:
    """Fingerprints of one shard of the training split, reusing and extending the per-crystal cache."""
    wildcard_constraints:
        shard="[0-9]+",
    input:
        dataset=f"{RESULTS}/data/dataset.parquet",
        config=stage_config("split"),
        # The shards add to the cache while others read it: its timestamp must not rerun them.
        cache=ancient(f"{FINGERPRINTS}/cache"),
    output:
        fingerprints=shard_file(f"{FINGERPRINTS}/train", "{shard}"),
    params:
        icrdesign=ICRDESIGN,
        shard_size=config["report"]["fingerprint_shard_size"],
    log:
        f"{RESULTS}/logs/fingerprint_shard_{{shard}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/fingerprint_shard_{{shard}}.tsv"
    conda:
        CONDA_ENV
    threads: resources_for("fingerprints")["threads"]
    resources:
        mem_mb=resources_for("fingerprints")["mem_mb"],
        runtime=resources_for("fingerprints")["runtime"],
    shell:
        "{params.icrdesign} fingerprints --dataset {input.dataset} --config {input.config} "
        "--shard-size {params.shard_size} --shard {wildcards.shard} --cache {input.cache} "
        "--out {output.fingerprints} --jobs {threads} > {log} 2>&1"


rule fingerprint_candidates:
    """Fingerprints of one design case's relaxed candidates (every row of its post-relaxation funnel with a
    relaxed structure), as soon as the case's relaxations are judged: beside DFT, off the report's path."""
    wildcard_constraints:
        case="|".join(re.escape(name) for name in config["sampling"]["cases"]),
    input:
        table=f"{RESULTS}/validation/{{case}}/{FUNNEL_TABLE}",
        relaxed=f"{RESULTS}/validation/{{case}}/{RELAXED_FOLDER}",
    output:
        fingerprints=f"{FINGERPRINTS}/candidates/{{case}}.npz",
    params:
        icrdesign=ICRDESIGN,
        # funnel.csv's columns (icrdesign.validation.funnel): the id and the relaxed CIF's path.
        id_column="candidate_id",
        cif_column="relaxed_cif",
    log:
        f"{RESULTS}/logs/fingerprint_candidates_{{case}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/fingerprint_candidates_{{case}}.tsv"
    conda:
        CONDA_ENV
    threads: resources_for("fingerprints")["threads"]
    resources:
        mem_mb=resources_for("fingerprints")["mem_mb"],
        runtime=resources_for("fingerprints")["runtime"],
    shell:
        "{params.icrdesign} fingerprints --structures {input.table} --id-column {params.id_column} "
        "--cif-column {params.cif_column} --out {output.fingerprints} --jobs {threads} > {log} 2>&1"


rule report:
    """Figures, summary.json/.md/.html, rates, dissimilarity to the training set (fingerprints read, not computed)."""
    input:
        config=stage_config("sampling", "report"),
        latent=f"{RESULTS}/model/latent.npz",
        model_metrics=f"{RESULTS}/model/metrics.json",
        split=f"{RESULTS}/model/split.csv",
        candidates=expand(f"{RESULTS}/design/{{case}}/candidates.csv", case=config["sampling"]["cases"]),
        design_metrics=expand(f"{RESULTS}/design/{{case}}/metrics.json", case=config["sampling"]["cases"]),
        cifs=expand(f"{RESULTS}/design/{{case}}/cifs", case=config["sampling"]["cases"]),
        validation=f"{RESULTS}/validation/validation.csv",
        dataset=f"{RESULTS}/data/dataset.parquet",
        train_fingerprints=lambda wildcards: shard_files(checkpoints.fingerprint_plan.get().output.plan),
        candidate_fingerprints=CANDIDATE_FINGERPRINTS,
        funnels=expand(f"{RESULTS}/validation/{{case}}/{FUNNEL_TABLE}", case=config["sampling"]["cases"]),
        funnel_summaries=expand(f"{RESULTS}/validation/{{case}}/{FUNNEL_SUMMARY}", case=config["sampling"]["cases"]),
        relaxed=expand(f"{RESULTS}/validation/{{case}}/{RELAXED_FOLDER}", case=config["sampling"]["cases"]),
    output:
        figures=[report_figure(name, fmt) for name in REPORT_FIGURES for fmt in config["report"]["formats"]],
        summary=f"{RESULTS}/report/summary.json",
        markdown=f"{RESULTS}/report/summary.md",
        table=report(f"{RESULTS}/report/summary.html", caption="../report/summary.rst", category="Summary"),
        evaluations=f"{RESULTS}/report/evaluations.csv",
        dissimilarity=f"{RESULTS}/report/dissimilarity.csv",
        rejected=f"{RESULTS}/report/rejected.csv",
    params:
        icrdesign=ICRDESIGN,
        design=lambda wildcards, input: Path(input.design_metrics[0]).parents[1],
        out=lambda wildcards, output: Path(output.summary).parent,
    log:
        f"{RESULTS}/logs/report.log",
    benchmark:
        f"{RESULTS}/benchmarks/report.tsv"
    conda:
        CONDA_ENV
    threads: resources_for("report")["threads"]
    resources:
        mem_mb=resources_for("report")["mem_mb"],
        runtime=resources_for("report")["runtime"],
    shell:
        "{params.icrdesign} report --config {input.config} --latent {input.latent} "
        "--model-metrics {input.model_metrics} --design {params.design} --validation-table {input.validation} "
        "--dataset {input.dataset} --train-fingerprints {input.train_fingerprints} "
        "--candidate-fingerprints {input.candidate_fingerprints} --funnels {input.funnels} "
        "--out {params.out} > {log} 2>&1"


rule paper_figures:
    """Target rule: every paper figure in every configured format."""
    input:
        rules.report.output.figures,
