rule train:
    """Train the property-structured VAE; a killed run resumes from results/model/checkpoint.pt."""
    input:
        icr=f"{RESULTS}/encoded/icr.npy",
        index=f"{RESULTS}/encoded/index.csv",
        icr_json=f"{RESULTS}/encoded/icr.json",
        scaler=f"{RESULTS}/encoded/scaler.json",
        dataset=f"{RESULTS}/data/dataset.parquet",
        config=stage_config("model", "split"),
    output:
        model=f"{RESULTS}/model/model.pt",
        metrics=f"{RESULTS}/model/metrics.json",
        split=f"{RESULTS}/model/split.csv",
        latent=f"{RESULTS}/model/latent.npz",
        latent_png=f"{RESULTS}/model/latent.png",
        latent_pdf=f"{RESULTS}/model/latent.pdf",
        history=f"{RESULTS}/model/history.csv",
        test_reconstruction=f"{RESULTS}/model/test_reconstruction.csv",
        rejected=f"{RESULTS}/model/rejected.csv",
        # results/model/checkpoint.pt is the training state a killed or extended run resumes from. It
        # is not an output: Snakemake deletes a job's outputs before running it, which would defeat
        # resuming. No rule reads it.
    params:
        icrdesign=ICRDESIGN,
        encoded=lambda wildcards, input: Path(input.icr).parent,
        out=lambda wildcards, output: Path(output.model).parent,
    log:
        f"{RESULTS}/logs/train.log",
    benchmark:
        f"{RESULTS}/benchmarks/train.tsv"
    conda:
        CONDA_ENV
    priority: TRAINING_PRIORITY
    threads: resources_for("train")["threads"]
    resources:
        mem_mb=resources_for("train")["mem_mb"],
        runtime=resources_for("train")["runtime"],
        # snakemake-executor-plugin-slurm turns `gpu` into a GPU request; 0 asks for none.
        # `model.device: cuda` needs one even when resources.train.gpus is left at 0.
        gpu=resources_for("train").get("gpus", 0) or int(config["model"]["device"] == "cuda"),
    shell:
        "{params.icrdesign} train --encoded {params.encoded} --dataset {input.dataset} "
        "--config {input.config} --out {params.out} --threads {threads} --no-progress > {log} 2>&1"
