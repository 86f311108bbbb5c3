# Inverse design: one `sample` job per design case (config sampling.cases). A checkpoint, because the
# number of candidates -- and so the validation jobs -- is known only after it runs.


checkpoint sample:
    """Sample, decode and filter candidates for one design case; surrogate-check the survivors."""
    wildcard_constraints:
        case="|".join(re.escape(name) for name in config["sampling"]["cases"]),
    input:
        config=stage_config("model", "sampling"),
        model=f"{RESULTS}/model/model.pt",
        latent=f"{RESULTS}/model/latent.npz",
        split=f"{RESULTS}/model/split.csv",
        dataset=f"{RESULTS}/data/dataset.parquet",
    output:
        candidates=f"{RESULTS}/design/{{case}}/candidates.csv",
        metrics=f"{RESULTS}/design/{{case}}/metrics.json",
        rejected=f"{RESULTS}/design/{{case}}/rejected.csv",
        funnel=f"{RESULTS}/design/{{case}}/funnel.json",
        cifs=directory(f"{RESULTS}/design/{{case}}/cifs"),
    params:
        icrdesign=ICRDESIGN,
        model=lambda wildcards, input: Path(input.model).parent,
        out=lambda wildcards, output: Path(output.candidates).parent,
    log:
        f"{RESULTS}/logs/sample_{{case}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/sample_{{case}}.tsv"
    conda:
        CONDA_ENV
    priority: VALIDATION_PATH_PRIORITY
    threads: resources_for("sample")["threads"]
    resources:
        mem_mb=resources_for("sample")["mem_mb"],
        runtime=resources_for("sample")["runtime"],
    shell:
        "{params.icrdesign} sample --model {params.model} --dataset {input.dataset} --config {input.config} "
        "--case {wildcards.case} --out {params.out} --threads {threads} > {log} 2>&1"


rule sample_all:
    """Every design case's candidates and metrics."""
    input:
        expand(f"{RESULTS}/design/{{case}}/metrics.json", case=config["sampling"]["cases"]),
