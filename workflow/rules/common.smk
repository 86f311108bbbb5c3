# Helpers shared by the workflow's .smk files (no rules here): the validated config,
# per-rule resources and the per-stage config files.

import re
import sys
from pathlib import Path

sys.path.insert(0, str(Path(workflow.basedir) / "src"))

from icrdesign.config import validate_config
from icrdesign.wiring import resources_for as _resources_for, stage_config_name, stage_config_text

# `--configfile` values are layered over the default config.yaml, then validated against
# workflow/schemas/config.schema.yaml (with the semantic checks): a bad key or value stops the run
# here, before any rule, with a message naming the key.
_validated = validate_config(dict(config))
config.clear()
config.update(_validated)

RESULTS = "results"
# Scheduling priorities (Snakemake's default is 0). Every stage after training waits for it, so it
# outranks any set of other jobs; the jobs on the way to the validation tiers come next; the
# fingerprints, which only the report reads, fill the cores those leave idle.
TRAINING_PRIORITY = 10
VALIDATION_PATH_PRIORITY = 1
# Every rule runs `icrdesign <command>` with the interpreter that runs Snakemake (its venv).
ICRDESIGN = f"{sys.executable} -m icrdesign.cli"
CONDA_ENV = "../../envs/icrdesign.yaml"


def resources_for(rule_name):
    return _resources_for(config, rule_name)


def stage_config(*sections):
    """The config file of the named sections (written by the `stage_config` rule)."""
    return f"{RESULTS}/config/{stage_config_name(sections)}.json"


def report_figure(name, fmt):
    """A report figure; only the PNG is embedded in the HTML report, other formats are plain outputs."""
    path = f"{RESULTS}/report/{name}.{fmt}"
    return report(path, caption=f"../report/{name}.rst", category="Figures") if fmt == "png" else path


from icrdesign.report.build import FIGURES as REPORT_FIGURES
