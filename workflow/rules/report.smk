# Report: the paper's figures S1-S5, success rates with confidence intervals and structural
# dissimilarity (icrdesign.report). Every figure and the summary table go into
# `snakemake --report results/report.html` with the captions in workflow/report/.

REPORT_FIGURES = ["S1_latent", "S2_gallery", "S3_boxplots", "S4_dissimilarity", "S5_training_distributions"]


def _report_figure(name, fmt):
    path = f"{RESULTS}/report/{name}.{fmt}"
    # Only the PNG is embedded in the HTML report; the other formats are plain outputs.
    return report(path, caption=f"../report/{name}.rst", category="Figures") if fmt == "png" else path


rule report:
    """Figures, summary.json/.md/.html, rates, dissimilarity to the training set."""
    input:
        config=section_config_file("sampling", "report"),
        latent=f"{RESULTS}/model/latent.npz",
        model_metrics=f"{RESULTS}/model/metrics.json",
        candidates=expand(f"{RESULTS}/design/{{case}}/candidates.csv", case=config["sampling"]["cases"]),
        design_metrics=expand(f"{RESULTS}/design/{{case}}/metrics.json", case=config["sampling"]["cases"]),
        validation=f"{RESULTS}/validation/validation.csv",
        dataset=f"{RESULTS}/data/dataset.parquet",
    output:
        figures=[_report_figure(name, fmt) for name in REPORT_FIGURES for fmt in config["report"]["formats"]],
        summary=f"{RESULTS}/report/summary.json",
        markdown=f"{RESULTS}/report/summary.md",
        table=report(f"{RESULTS}/report/summary.html", caption="../report/summary.rst", category="Summary"),
        evaluations=f"{RESULTS}/report/evaluations.csv",
        dissimilarity=f"{RESULTS}/report/dissimilarity.csv",
        rejected=f"{RESULTS}/report/rejected.csv",
        train_fingerprints=f"{RESULTS}/report/fingerprints_train.npz",
    log:
        f"{RESULTS}/logs/report.log",
    benchmark:
        f"{RESULTS}/benchmarks/report.tsv"
    threads: resources_for("report")["threads"]
    resources:
        mem_mb=resources_for("report")["mem_mb"],
        runtime=resources_for("report")["runtime"],
    shell:
        "{PY} icrdesign.cli report --config {input.config} --results {RESULTS} --out {RESULTS}/report "
        "--jobs {threads} > {log} 2>&1"


rule paper_figures:
    """Target rule: every paper figure in every configured format."""
    input:
        rules.report.output.figures,
