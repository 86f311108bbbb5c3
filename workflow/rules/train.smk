rule train:
    """Train the property-structured VAE; a killed run resumes from results/model/checkpoint.pt."""
    input:
        icr=f"{RESULTS}/encoded/icr.npy",
        index=f"{RESULTS}/encoded/index.csv",
        icr_json=f"{RESULTS}/encoded/icr.json",
        scaler=f"{RESULTS}/encoded/scaler.json",
        dataset=f"{RESULTS}/data/dataset.parquet",
        config=section_config_file("model", "representation"),
    output:
        model=f"{RESULTS}/model/model.pt",
        metrics=f"{RESULTS}/model/metrics.json",
        split=f"{RESULTS}/model/split.csv",
        latent=f"{RESULTS}/model/latent.npz",
        latent_png=f"{RESULTS}/model/latent.png",
        latent_pdf=f"{RESULTS}/model/latent.pdf",
        history=f"{RESULTS}/model/history.csv",
    log:
        f"{RESULTS}/logs/train.log",
    benchmark:
        f"{RESULTS}/benchmarks/train.tsv"
    threads: resources_for("train")["threads"]
    resources:
        mem_mb=resources_for("train")["mem_mb"],
        runtime=resources_for("train")["runtime"],
        # snakemake-executor-plugin-slurm turns `gpu` into a GPU request; 0 asks for none.
        # `model.device: cuda` needs one even when resources.train.gpus is left at 0.
        gpu=resources_for("train").get("gpus", 0) or int(config["model"]["device"] == "cuda"),
    shell:
        "{PY} icrdesign.cli train --encoded {RESULTS}/encoded --dataset {input.dataset} "
        "--config {input.config} --out {RESULTS}/model --threads {threads} --no-progress > {log} 2>&1"
