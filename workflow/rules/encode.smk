rule encode:
    """Encode the dataset to ICR arrays; fit the per-row scaler on the training split."""
    input:
        table=f"{RESULTS}/data/dataset.parquet",
        config=section_config_file("representation", "model"),
    output:
        array=f"{RESULTS}/encoded/icr.npy",
        index=f"{RESULTS}/encoded/index.csv",
        icr=f"{RESULTS}/encoded/icr.json",
        scaler=f"{RESULTS}/encoded/scaler.json",
        rejected=f"{RESULTS}/encoded/rejected.csv",
        summary=f"{RESULTS}/encoded/summary.json",
    log:
        f"{RESULTS}/logs/encode.log",
    benchmark:
        f"{RESULTS}/benchmarks/encode.tsv"
    threads: resources_for("encode")["threads"]
    resources:
        mem_mb=resources_for("encode")["mem_mb"],
        runtime=resources_for("encode")["runtime"],
    shell:
        "{PY} icrdesign.cli encode --dataset {input.table} --config {input.config} "
        "--out {RESULTS}/encoded --jobs {threads} > {log} 2>&1"
