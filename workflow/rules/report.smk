# Report: the paper's figures S1-S5, success rates with confidence intervals and structural
# dissimilarity (icrdesign.report). Every figure and the summary table go into
# `snakemake --report results/report.html` with the captions in workflow/report/.


rule report:
    """Figures, summary.json/.md/.html, rates, dissimilarity to the training set."""
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
    output:
        figures=[report_figure(name, fmt) for name in REPORT_FIGURES for fmt in config["report"]["formats"]],
        summary=f"{RESULTS}/report/summary.json",
        markdown=f"{RESULTS}/report/summary.md",
        table=report(f"{RESULTS}/report/summary.html", caption="../report/summary.rst", category="Summary"),
        evaluations=f"{RESULTS}/report/evaluations.csv",
        dissimilarity=f"{RESULTS}/report/dissimilarity.csv",
        rejected=f"{RESULTS}/report/rejected.csv",
        train_fingerprints=f"{RESULTS}/report/fingerprints_train.npz",
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
        "--dataset {input.dataset} --out {params.out} --jobs {threads} > {log} 2>&1"


rule paper_figures:
    """Target rule: every paper figure in every configured format."""
    input:
        rules.report.output.figures,
