rule stage_config:
    """The seed and the named config sections as one JSON file, the `--config` of the rules that read
    them. Written by this rule (never while the workflow is parsed), so a dry run changes nothing; its
    text is a parameter, so Snakemake reruns it, and the rules after it, when a section changes."""
    output:
        f"{RESULTS}/config/{{sections}}.json",
    wildcard_constraints:
        sections="[a-z_]+(\\+[a-z_]+)*",
    params:
        text=lambda wildcards: stage_config_text(config, wildcards.sections),
    log:
        f"{RESULTS}/logs/stage_config_{{sections}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/stage_config_{{sections}}.tsv"
    conda:
        CONDA_ENV
    script:
        "../scripts/stage_config.py"
