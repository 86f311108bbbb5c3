# Inverse design: one `sample` job per design case (config sampling.cases). A checkpoint, because the
# number of candidates -- and so the validation jobs -- is known only after it runs.

import re

SAMPLE_CASES = list(config["sampling"]["cases"])


checkpoint sample:
    """Sample, decode and filter candidates for one design case; surrogate-check the survivors."""
    wildcard_constraints:
        case="|".join(re.escape(name) for name in SAMPLE_CASES),
    input:
        config=section_config_file("model", "sampling"),
        model=f"{RESULTS}/model/model.pt",
        latent=f"{RESULTS}/model/latent.npz",
        dataset=f"{RESULTS}/data/dataset.parquet",
    output:
        candidates=f"{RESULTS}/design/{{case}}/candidates.csv",
        metrics=f"{RESULTS}/design/{{case}}/metrics.json",
        rejected=f"{RESULTS}/design/{{case}}/rejected.csv",
        funnel=f"{RESULTS}/design/{{case}}/funnel.json",
        cifs=directory(f"{RESULTS}/design/{{case}}/cifs"),
    log:
        f"{RESULTS}/logs/sample_{{case}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/sample_{{case}}.tsv"
    threads: resources_for("sample")["threads"]
    resources:
        mem_mb=resources_for("sample")["mem_mb"],
        runtime=resources_for("sample")["runtime"],
    shell:
        "{PY} icrdesign.cli sample --model {RESULTS}/model --dataset {input.dataset} --config {input.config} "
        "--case {wildcards.case} --out {RESULTS}/design/{wildcards.case} > {log} 2>&1"


rule sample_all:
    """Every design case's candidates and metrics."""
    input:
        expand(f"{RESULTS}/design/{{case}}/metrics.json", case=SAMPLE_CASES),
