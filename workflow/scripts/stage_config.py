"""Write one stage config file (the `stage_config` rule): its text comes in as a parameter."""

from icrdesign.io import write_text

write_text(snakemake.output[0], snakemake.params.text)  # noqa: F821 (injected by Snakemake)
