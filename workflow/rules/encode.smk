rule encode:
    """Encode the dataset to ICR arrays; fit the per-row scaler on the training split."""
    input:
        table=f"{RESULTS}/data/dataset.parquet",
        config=stage_config("representation", "split"),
    output:
        array=f"{RESULTS}/encoded/icr.npy",
        index=f"{RESULTS}/encoded/index.csv",
        icr=f"{RESULTS}/encoded/icr.json",
        scaler=f"{RESULTS}/encoded/scaler.json",
        rejected=f"{RESULTS}/encoded/rejected.csv",
        summary=f"{RESULTS}/encoded/summary.json",
    params:
        icrdesign=ICRDESIGN,
        out=lambda wildcards, output: Path(output.array).parent,
    log:
        f"{RESULTS}/logs/encode.log",
    benchmark:
        f"{RESULTS}/benchmarks/encode.tsv"
    conda:
        CONDA_ENV
    threads: resources_for("encode")["threads"]
    resources:
        mem_mb=resources_for("encode")["mem_mb"],
        runtime=resources_for("encode")["runtime"],
    shell:
        "{params.icrdesign} encode --dataset {input.table} --config {input.config} "
        "--out {params.out} --jobs {threads} > {log} 2>&1"
