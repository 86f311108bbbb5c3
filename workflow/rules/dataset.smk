from icrdesign.wiring import dataset_input_files, dataset_sections


rule dataset:
    """Build the dataset table (demo, Materials Project or the user's file) and its provenance."""
    input:
        config=stage_config(*dataset_sections(config)),
        # data.source file: the user's files (the data file or each file of its folder, the properties
        # and split files), so that editing one reruns the dataset.
        data=dataset_input_files(config),
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
        "--provenance {output.provenance} --jobs {threads} > {log} 2>&1"
