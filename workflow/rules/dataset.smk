rule dataset:
    """Build the dataset table (demo or Materials Project) and its provenance."""
    input:
        config=section_config_file("data"),
    output:
        table=f"{RESULTS}/data/dataset.parquet",
        rejected=f"{RESULTS}/data/rejected.csv",
        provenance=f"{RESULTS}/provenance.json",
    log:
        f"{RESULTS}/logs/dataset.log",
    benchmark:
        f"{RESULTS}/benchmarks/dataset.tsv"
    threads: resources_for("dataset")["threads"]
    resources:
        mem_mb=resources_for("dataset")["mem_mb"],
        runtime=resources_for("dataset")["runtime"],
    shell:
        "{PY} icrdesign.cli dataset --config {input.config} --out {RESULTS}/data "
        "--provenance {output.provenance} > {log} 2>&1"
