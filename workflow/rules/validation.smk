# Validation: every valid candidate relaxed with the potential in chunks (one job per
# relaxation.chunk_size candidates, batched inside), the post-relaxation funnel per case (unique, novel,
# stable against the reference hull, S.U.N.), then DFT on the candidates the funnel ranks first, in
# batches of dft.candidates_per_job, and the aggregate table. Which candidates each job takes, which
# elements each tier needs and where every file lies come from icrdesign.validation.plan. A failed
# candidate is a result; `icrdesign retry-failed --results results` forgets the failed ones, so that the
# next run redoes them (and only them).

from icrdesign.artefacts.validation import DFT, MLIP, chunk_dir, chunk_index_path, validation_dir
from icrdesign.validation.funnel import FUNNEL_SUMMARY, FUNNEL_TABLE, RELAXED_FOLDER
from icrdesign.validation.plan import ValidationPlan

VALIDATION_DIR = validation_dir(RESULTS)
VALIDATION_PLAN = ValidationPlan(
    config,
    VALIDATION_DIR,
    lambda case: checkpoints.sample.get(case=case).output.candidates,
    lambda case: checkpoints.funnel.get(case=case).output.table,
)


wildcard_constraints:
    chunk="[0-9]+",


rule mlip_references:
    """The MLIP's elemental references for every element of the representation's vocabulary (every
    element a candidate can hold), in one job: each is seconds, while a job's start (imports, model
    load) costs ~7 s. It needs no candidate, so it runs beside the sampling jobs. The cache folder (one
    per engine and settings) keeps every element computed so far: a rerun adds what is missing. The
    index beside it records each element's status."""
    input:
        config=stage_config("relaxation"),
        icr=f"{RESULTS}/encoded/icr.json",
    output:
        cache=update(directory(VALIDATION_PLAN.reference_dir(MLIP))),
        index=VALIDATION_PLAN.reference_index(MLIP),
    params:
        icrdesign=ICRDESIGN,
        work=VALIDATION_PLAN.reference_work_dir(MLIP),
    log:
        f"{RESULTS}/logs/references_{MLIP}.log",
    benchmark:
        f"{RESULTS}/benchmarks/references_{MLIP}.tsv"
    conda:
        CONDA_ENV
    priority: VALIDATION_PATH_PRIORITY
    threads: resources_for("relax")["threads"]
    resources:
        mem_mb=resources_for("relax")["mem_mb"],
        runtime=resources_for("relax")["runtime"],
    shell:
        "{params.icrdesign} relax --vocabulary {input.icr} --references {output.cache} "
        "--index {output.index} --config {input.config} --out {params.work} --threads {threads} > {log} 2>&1"


rule relax:
    """One chunk of a case's valid candidates relaxed in batches (atomate2-style Maker + jobflow); each
    candidate gets its record, task document and last structure. A refused or failed candidate is
    recorded with its reason and the others go on. The chunk folder keeps what earlier runs computed
    (update): after `retry-failed` removed the index and the failed records, only those are redone."""
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
        chunk=update(directory(chunk_dir(VALIDATION_DIR, "{case}", MLIP, "{chunk}"))),
        index=chunk_index_path(VALIDATION_DIR, "{case}", MLIP, "{chunk}"),
    params:
        icrdesign=ICRDESIGN,
    log:
        f"{RESULTS}/logs/relax_{{case}}_{{chunk}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/relax_{{case}}_{{chunk}}.tsv"
    conda:
        CONDA_ENV
    priority: VALIDATION_PATH_PRIORITY
    threads: resources_for("relax")["threads"]
    resources:
        mem_mb=resources_for("relax")["mem_mb"],
        runtime=resources_for("relax")["runtime"],
    shell:
        "{params.icrdesign} relax --candidates {input.candidates} --chunk {wildcards.chunk} "
        "--case {wildcards.case} --config {input.config} --references {input.references} "
        "--out {output.chunk} --index {output.index} --threads {threads} > {log} 2>&1"


rule hull:
    """The reference convex hull of the stability check: the data source's phases (Materials Project
    thermo data of the candidates' chemical systems, downloaded and cached; or the training table), or
    the same phases relaxed with the potential (stability.hull: mlip)."""
    input:
        config=stage_config("data", "relaxation", "stability"),
        dataset=f"{RESULTS}/data/dataset.parquet",
        candidates=lambda wildcards: VALIDATION_PLAN.candidates_tables(),
        references=ancient(VALIDATION_PLAN.reference_dir(MLIP)),
    output:
        hull=VALIDATION_PLAN.hull_path(),
        cache=update(directory(VALIDATION_PLAN.hull_cache())),
    params:
        icrdesign=ICRDESIGN,
    log:
        f"{RESULTS}/logs/hull.log",
    benchmark:
        f"{RESULTS}/benchmarks/hull.tsv"
    conda:
        CONDA_ENV
    priority: VALIDATION_PATH_PRIORITY
    threads: resources_for("relax")["threads"]
    resources:
        mem_mb=resources_for("relax")["mem_mb"],
        runtime=resources_for("relax")["runtime"],
    shell:
        "{params.icrdesign} hull --config {input.config} --dataset {input.dataset} "
        "--candidates {input.candidates} --cache {output.cache} --references {input.references} "
        "--out {output.hull} > {log} 2>&1"


checkpoint funnel:
    """MatterGen's post-relaxation funnel of one case: relaxed -> unique -> novel -> stable -> S.U.N. ->
    on target, per strategy, each drop counted by reason; the DFT tier takes its candidates from it."""
    input:
        config=stage_config("sampling"),
        candidates=rules.sample.output.candidates,
        cifs=rules.sample.output.cifs,
        chunks=lambda wildcards: VALIDATION_PLAN.chunk_dirs(wildcards.case, MLIP),
        indexes=lambda wildcards: VALIDATION_PLAN.chunk_indexes(wildcards.case, MLIP),
        dataset=f"{RESULTS}/data/dataset.parquet",
        hull=VALIDATION_PLAN.hull_path(),
    output:
        table=f"{VALIDATION_DIR}/{{case}}/{FUNNEL_TABLE}",
        summary=f"{VALIDATION_DIR}/{{case}}/{FUNNEL_SUMMARY}",
        relaxed=directory(f"{VALIDATION_DIR}/{{case}}/{RELAXED_FOLDER}"),
    params:
        icrdesign=ICRDESIGN,
        out=lambda wildcards, output: Path(output.table).parent,
    log:
        f"{RESULTS}/logs/funnel_{{case}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/funnel_{{case}}.tsv"
    conda:
        CONDA_ENV
    priority: VALIDATION_PATH_PRIORITY
    threads: resources_for("funnel")["threads"]
    resources:
        mem_mb=resources_for("funnel")["mem_mb"],
        runtime=resources_for("funnel")["runtime"],
    shell:
        "{params.icrdesign} funnel --config {input.config} --case {wildcards.case} --candidates {input.candidates} "
        "--mlip-chunks {input.chunks} --dataset {input.dataset} --hull {input.hull} --out {params.out} > {log} 2>&1"


rule dft_reference_cache:
    """The DFT tier's elemental reference cache, one folder per engine and settings. The DFT jobs fill it:
    each computes the references its candidates need that are not there yet, each element once (a lock
    per element), so that no job waits for every case's funnel before it starts."""
    output:
        update(directory(VALIDATION_PLAN.reference_dir(DFT))),
    log:
        f"{RESULTS}/logs/dft_reference_cache.log",
    conda:
        CONDA_ENV
    shell:
        "mkdir -p {output} > {log} 2>&1"


rule dft:
    """One batch of a case's DFT candidates (dft.candidates_per_job; one allocation on SLURM), each from
    the structure its MLIP relaxation left; failures are recorded, not raised. The batch folder keeps
    what earlier runs computed, as for `relax`."""
    input:
        config=stage_config("relaxation", "dft"),
        funnel=lambda wildcards: checkpoints.funnel.get(case=wildcards.case).output.table,
        relaxed=lambda wildcards: checkpoints.funnel.get(case=wildcards.case).output.relaxed,
        # ancient: as for `relax`.
        references=ancient(VALIDATION_PLAN.reference_dir(DFT)),
        mlip_references=ancient(VALIDATION_PLAN.reference_dir(MLIP)),
    output:
        chunk=update(directory(chunk_dir(VALIDATION_DIR, "{case}", DFT, "{chunk}"))),
        index=chunk_index_path(VALIDATION_DIR, "{case}", DFT, "{chunk}"),
    params:
        icrdesign=ICRDESIGN,
    log:
        f"{RESULTS}/logs/dft_{{case}}_{{chunk}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/dft_{{case}}_{{chunk}}.tsv"
    conda:
        CONDA_ENV
    # The costliest job first, so that it is not the last one left running on one core.
    priority: lambda wildcards: VALIDATION_PATH_PRIORITY + VALIDATION_PLAN.dft_job_cost(wildcards.case, int(wildcards.chunk))
    threads: config["dft"]["threads"]
    resources:
        mem_mb=config["dft"]["mem_mb"],
        runtime=lambda wildcards: VALIDATION_PLAN.dft_runtime(wildcards.case, int(wildcards.chunk)),
    shell:
        "{params.icrdesign} dft --candidates {input.funnel} --chunk {wildcards.chunk} --case {wildcards.case} "
        "--config {input.config} --references {input.references} --mlip-references {input.mlip_references} "
        "--out {output.chunk} --index {output.index} > {log} 2>&1"


rule validation_table:
    """Every candidate's MLIP and DFT record in one table."""
    input:
        **VALIDATION_PLAN.per_case(VALIDATION_PLAN.table_inputs),
    output:
        VALIDATION_PLAN.table_path(),
    params:
        icrdesign=ICRDESIGN,
        chunks=lambda wildcards: [path for case in VALIDATION_PLAN.cases for tier in (MLIP, DFT)
                                  for path in VALIDATION_PLAN.chunk_dirs(case, tier)],
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
        "{params.icrdesign} validation-table --out {output} {params.chunks} > {log} 2>&1"
