rule dataset:
    """Build the dataset table (demo or Materials Project) and its provenance."""
    input:
        config=stage_config("data"),
    output:
        table=f"{RESULTS}/data/dataset.parquet",
        rejected=f"{RESULTS}/data/rejected.csv",
        provenance=f"{RESULTS}/provenance.json",
    params:
        icrdesign=ICRDESIGN,
        out=lambda wildcards, output: Path(output.table).parent,
    log:
        f"{RESULTS}/logs/dataset.log",
    benchmark:
        f"{RESULTS}/benchmarks/dataset.tsv"
    conda:
        CONDA_ENV
    threads: resources_for("dataset")["threads"]
    resources:
        mem_mb=resources_for("dataset")["mem_mb"],
        runtime=resources_for("dataset")["runtime"],
    shell:
        "{params.icrdesign} dataset --config {input.config} --out {params.out} "
        "--provenance {output.provenance} > {log} 2>&1"
