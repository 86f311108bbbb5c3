# Validation funnel: each tier's elemental references in one job, one MLIP relaxation per selected
# candidate, one DFT job per DFT-selected candidate (its own threads/runtime/mem_mb, so SLURM maps it to
# an allocation), and the aggregate table. Candidates come from the `sample` checkpoint; which ones each
# tier takes, which elements it needs and where every file lies come from icrdesign.validation.plan.
# A failed candidate is a result; `icrdesign retry-failed --results results` forgets the failed ones,
# so that the next run redoes them.

from icrdesign.artefacts.candidates import candidate_cif
from icrdesign.artefacts.validation import DFT, MLIP, mlip_structure_path, record_path, validation_dir, work_path
from icrdesign.validation.plan import ValidationPlan

VALIDATION_DIR = validation_dir(RESULTS)
VALIDATION_PLAN = ValidationPlan(
    config, VALIDATION_DIR, lambda case: checkpoints.sample.get(case=case).output.candidates
)


rule mlip_references:
    """The MLIP's elemental references for every candidate of its tier, in one job: each is seconds,
    while a job's start (imports, model load) costs ~7 s. The cache folder (one per engine and
    settings) keeps every element computed so far: a rerun adds what is missing. The index beside it
    records each element's status."""
    input:
        config=stage_config("relaxation"),
        candidates=lambda wildcards: VALIDATION_PLAN.candidates_tables(),
    output:
        cache=update(directory(VALIDATION_PLAN.reference_dir(MLIP))),
        index=VALIDATION_PLAN.reference_index(MLIP),
    params:
        icrdesign=ICRDESIGN,
        elements=lambda wildcards: " ".join(VALIDATION_PLAN.reference_elements(MLIP)),
        work=VALIDATION_PLAN.reference_work_dir(MLIP),
    log:
        f"{RESULTS}/logs/references_{MLIP}.log",
    benchmark:
        f"{RESULTS}/benchmarks/references_{MLIP}.tsv"
    conda:
        CONDA_ENV
    threads: resources_for("relax")["threads"]
    resources:
        mem_mb=resources_for("relax")["mem_mb"],
        runtime=resources_for("relax")["runtime"],
    shell:
        "{params.icrdesign} relax --reference-elements {params.elements} --references {output.cache} "
        "--index {output.index} --config {input.config} --out {params.work} > {log} 2>&1"


rule dft_references:
    """The DFT elemental references for every candidate of its tier, in one job (each is a DFT
    calculation, so the job's runtime is one per element); prototype elements start from the MLIP's."""
    input:
        config=stage_config("relaxation", "dft"),
        candidates=lambda wildcards: VALIDATION_PLAN.candidates_tables(),
        mlip_references=ancient(VALIDATION_PLAN.reference_dir(MLIP)),
    output:
        cache=update(directory(VALIDATION_PLAN.reference_dir(DFT))),
        index=VALIDATION_PLAN.reference_index(DFT),
    params:
        icrdesign=ICRDESIGN,
        elements=lambda wildcards: " ".join(VALIDATION_PLAN.reference_elements(DFT)),
        work=VALIDATION_PLAN.reference_work_dir(DFT),
    log:
        f"{RESULTS}/logs/references_{DFT}.log",
    benchmark:
        f"{RESULTS}/benchmarks/references_{DFT}.tsv"
    conda:
        CONDA_ENV
    threads: config["dft"]["threads"]
    resources:
        mem_mb=config["dft"]["mem_mb"],
        runtime=lambda wildcards: VALIDATION_PLAN.dft_references_runtime(),
    shell:
        "{params.icrdesign} dft --reference-elements {params.elements} --references {output.cache} "
        "--mlip-references {input.mlip_references} --index {output.index} --config {input.config} "
        "--out {params.work} > {log} 2>&1"


rule relax:
    """MLIP relaxation + corrected formation energy of one candidate (atomate2 + jobflow). A candidate the
    input checks refuse becomes a failed record with its reason (--record-refusal); the run goes on."""
    input:
        config=stage_config("relaxation", "representation"),
        candidates=rules.sample.output.candidates,
        cifs=rules.sample.output.cifs,
        # ancient: a references job that reruns (new elements, a failed one retried) only adds to the
        # cache, so the candidates computed before it are not out of date. The index is an input too:
        # `retry-failed` removes a failed one, so the references job reruns before the retried candidates.
        references=ancient(VALIDATION_PLAN.reference_dir(MLIP)),
        references_index=ancient(VALIDATION_PLAN.reference_index(MLIP)),
    output:
        record=record_path(VALIDATION_DIR, "{case}", "{candidate}", MLIP),
        structure=mlip_structure_path(VALIDATION_DIR, "{case}", "{candidate}"),
        work=directory(work_path(VALIDATION_DIR, "{case}", "{candidate}", MLIP)),
    params:
        icrdesign=ICRDESIGN,
        cif=lambda wildcards, input: candidate_cif(input.candidates, wildcards.candidate),
        out=lambda wildcards, output: Path(output.record).parent,
    log:
        f"{RESULTS}/logs/relax_{{case}}_{{candidate}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/relax_{{case}}_{{candidate}}.tsv"
    conda:
        CONDA_ENV
    threads: resources_for("relax")["threads"]
    resources:
        mem_mb=resources_for("relax")["mem_mb"],
        runtime=resources_for("relax")["runtime"],
    shell:
        "{params.icrdesign} relax {params.cif} --config {input.config} --case {wildcards.case} "
        "--candidate-id {wildcards.candidate} --references {input.references} --out {params.out} "
        "--record-refusal > {log} 2>&1"


rule dft:
    """DFT of one candidate from the structure its MLIP relaxation left (its own allocation); failures
    are recorded, not raised."""
    input:
        config=stage_config("relaxation", "dft"),
        structure=rules.relax.output.structure,
        # ancient: as for `relax`.
        references=ancient(VALIDATION_PLAN.reference_dir(DFT)),
        references_index=ancient(VALIDATION_PLAN.reference_index(DFT)),
        mlip_references=ancient(VALIDATION_PLAN.reference_dir(MLIP)),
    output:
        record=record_path(VALIDATION_DIR, "{case}", "{candidate}", DFT),
        work=directory(work_path(VALIDATION_DIR, "{case}", "{candidate}", DFT)),
    params:
        icrdesign=ICRDESIGN,
        out=lambda wildcards, output: Path(output.record).parent,
    log:
        f"{RESULTS}/logs/dft_{{case}}_{{candidate}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/dft_{{case}}_{{candidate}}.tsv"
    conda:
        CONDA_ENV
    threads: config["dft"]["threads"]
    resources:
        mem_mb=config["dft"]["mem_mb"],
        runtime=config["dft"]["runtime"],
    shell:
        "{params.icrdesign} dft {input.structure} --config {input.config} --case {wildcards.case} "
        "--candidate-id {wildcards.candidate} --references {input.references} "
        "--mlip-references {input.mlip_references} --out {params.out} --record-refusal > {log} 2>&1"


rule validation_table:
    """Every candidate's MLIP and DFT record in one table."""
    input:
        lambda wildcards: VALIDATION_PLAN.result_paths(),
    output:
        VALIDATION_PLAN.table_path(),
    params:
        icrdesign=ICRDESIGN,
    log:
        f"{RESULTS}/logs/validation_table.log",
    benchmark:
        f"{RESULTS}/benchmarks/validation_table.tsv"
    conda:
        CONDA_ENV
    threads: resources_for("validation_table")["threads"]
    resources:
        mem_mb=resources_for("validation_table")["mem_mb"],
        runtime=resources_for("validation_table")["runtime"],
    shell:
        "{params.icrdesign} validation-table --out {output} {input} > {log} 2>&1"
