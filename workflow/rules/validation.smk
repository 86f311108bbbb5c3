# Validation funnel: one MLIP relaxation per selected candidate, one DFT job per DFT-selected
# candidate (its own threads/runtime/mem_mb, so SLURM maps it to an allocation), one elemental-reference
# job per engine, and the aggregate table. Candidates come from the `sample` checkpoint.

import pandas as pd
from pymatgen.core import Composition

from icrdesign.validation.results import failed_results
from icrdesign.validation.selection import select_for_dft, select_for_relaxation

VALIDATION = f"{RESULTS}/validation"
MLIP_ENGINE = config["relaxation"]["force_field"]
DFT_ENGINE = config["dft"]["engine"]

# A rerun retries failed candidates (a failed relaxation or DFT is recorded as a result with status
# 'failed'): their result files are deleted here, while the workflow is parsed and before the DAG is
# built, so Snakemake sees them missing and schedules exactly those jobs (and the table and report
# after them). Only in a real run's main process: never on a dry run (`-n` changes nothing on disk, so
# it reports failed candidates as done, while the real run retries them) and never in a cluster or
# subprocess job that re-reads this file while others run. A run where everything succeeded leaves
# nothing to delete, so a rerun with nothing changed does nothing.
# `dft.retry_failed: false` keeps failures as final results (a deterministic failure then costs
# nothing on later runs).
if (config["dft"]["retry_failed"] and workflow.is_main_process
        and not (workflow.output_settings and workflow.output_settings.dryrun)):
    for failed in failed_results(Path(VALIDATION)):
        failed.unlink()


def case_candidates(case):
    return pd.read_csv(checkpoints.sample.get(case=case).output.candidates)


def candidate_row(wildcards):
    candidates = case_candidates(wildcards.case)
    return candidates[candidates["id"].astype(str) == wildcards.candidate].iloc[0]


def candidate_cif(wildcards):
    return f"{RESULTS}/design/{wildcards.case}/{candidate_row(wildcards)['cif']}"


def relaxation_ids(candidates):
    return select_for_relaxation(candidates, config["relaxation"]["max_candidates_per_case"])


def dft_ids(candidates):
    return select_for_dft(candidates, config["dft"], config["relaxation"]["max_candidates_per_case"])


def reference_elements(engine):
    """Every element of the candidates that reach this engine's tier, over all cases."""
    select = relaxation_ids if engine == MLIP_ENGINE else dft_ids
    elements = set()
    for case in config["sampling"]["cases"]:
        candidates = case_candidates(case)
        chosen = candidates[candidates["id"].astype(str).isin(select(candidates))]
        for formula in chosen["formula"]:
            elements.update(el.symbol for el in Composition(formula).elements)
    return sorted(elements)


def reference_runtime(engine):
    """Minutes for one engine's references job: an MLIP relaxation's allowance for the whole batch
    (seconds each), a DFT job's for every element (each is a DFT calculation)."""
    if engine == MLIP_ENGINE:
        return resources_for("relax")["runtime"]
    return config["dft"]["runtime"] * max(1, len(reference_elements(engine)))


def reference_index(engine):
    # ancient: a references job that reruns (a new element, a failed one retried) recomputes only
    # what is missing, so the candidates computed before it are not out of date.
    return ancient(f"{VALIDATION}/references/{engine}/index.json")


def validation_results(wildcards):
    paths = []
    for case in config["sampling"]["cases"]:
        candidates = case_candidates(case)
        paths += [f"{VALIDATION}/{case}/{cid}/mlip.json" for cid in relaxation_ids(candidates)]
        paths += [f"{VALIDATION}/{case}/{cid}/dft.json" for cid in dft_ids(candidates)]
    return paths


rule references:
    """The elemental references of one engine (MLIP or DFT) for every candidate of its tier, in one job:
    each is seconds to minutes, while a job's start (imports, model load) costs ~7 s. Cached per
    element (results/validation/references/<engine>/<El>.json); index.json records each status."""
    input:
        config=section_config_file("relaxation", "dft"),
        candidates=lambda wc: [checkpoints.sample.get(case=case).output.candidates for case in config["sampling"]["cases"]],
    output:
        f"{VALIDATION}/references/{{engine}}/index.json",
    params:
        command=lambda wc: "dft --engine " + wc.engine if wc.engine in ("gpaw", "vasp") else "relax",
        elements=lambda wc: " ".join(reference_elements(wc.engine)),
    log:
        f"{RESULTS}/logs/references_{{engine}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/references_{{engine}}.tsv"
    threads: config["dft"]["threads"]
    resources:
        mem_mb=config["dft"]["mem_mb"],
        runtime=lambda wc: reference_runtime(wc.engine),
    shell:
        "{PY} icrdesign.cli {params.command} --reference-elements {params.elements} --index {output} "
        "--config {input.config} --references {VALIDATION}/references/{wildcards.engine} "
        "--out {VALIDATION}/references/work/{wildcards.engine} > {log} 2>&1"


rule relax:
    """MLIP relaxation + corrected formation energy of one candidate (atomate2 + jobflow)."""
    input:
        config=section_config_file("relaxation"),
        candidates=f"{RESULTS}/design/{{case}}/candidates.csv",
        references=reference_index(MLIP_ENGINE),
    output:
        f"{VALIDATION}/{{case}}/{{candidate}}/mlip.json",
    params:
        cif=candidate_cif,
    log:
        f"{RESULTS}/logs/relax_{{case}}_{{candidate}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/relax_{{case}}_{{candidate}}.tsv"
    threads: resources_for("relax")["threads"]
    resources:
        mem_mb=resources_for("relax")["mem_mb"],
        runtime=resources_for("relax")["runtime"],
    shell:
        "{PY} icrdesign.cli relax {params.cif} --config {input.config} --case {wildcards.case} "
        "--candidate-id {wildcards.candidate} --references {VALIDATION}/references/{MLIP_ENGINE} "
        "--out {VALIDATION}/{wildcards.case}/{wildcards.candidate} > {log} 2>&1"


rule dft:
    """Relax + static DFT of one candidate (its own allocation); failures are recorded, not raised."""
    input:
        config=section_config_file("relaxation", "dft"),
        candidates=f"{RESULTS}/design/{{case}}/candidates.csv",
        references=reference_index(DFT_ENGINE),
        # DFT starts from the MLIP-relaxed cell when that relaxation succeeded (fewer DFT steps).
        mlip=f"{VALIDATION}/{{case}}/{{candidate}}/mlip.json",
    output:
        f"{VALIDATION}/{{case}}/{{candidate}}/dft.json",
    params:
        cif=candidate_cif,
    log:
        f"{RESULTS}/logs/dft_{{case}}_{{candidate}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/dft_{{case}}_{{candidate}}.tsv"
    threads: config["dft"]["threads"]
    resources:
        mem_mb=config["dft"]["mem_mb"],
        runtime=config["dft"]["runtime"],
    shell:
        "{PY} icrdesign.cli dft {params.cif} --engine {DFT_ENGINE} --config {input.config} "
        "--case {wildcards.case} --candidate-id {wildcards.candidate} "
        "--prerelaxed {VALIDATION}/{wildcards.case}/{wildcards.candidate}/mlip_relaxed.cif "
        "--references {VALIDATION}/references/{DFT_ENGINE} "
        "--out {VALIDATION}/{wildcards.case}/{wildcards.candidate} > {log} 2>&1"


rule validation_table:
    """Every candidate's MLIP and DFT row in one table."""
    input:
        validation_results,
    output:
        f"{VALIDATION}/validation.csv",
    log:
        f"{RESULTS}/logs/validation_table.log",
    benchmark:
        f"{RESULTS}/benchmarks/validation_table.tsv"
    threads: resources_for("validation_table")["threads"]
    resources:
        mem_mb=resources_for("validation_table")["mem_mb"],
        runtime=resources_for("validation_table")["runtime"],
    run:
        from icrdesign.validation.results import write_validation_table

        write_validation_table([Path(path) for path in input], Path(output[0]))
