"""Write each selected candidate's atomate2 Flows as JSON: OUT/<case>/<candidate_id>.mlip.json
(force-field relaxation) and .dft.json (config dft.engine), for users who submit flows to their own
FireWorks or jobflow-remote queue instead of running the workflow's validation rules."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from icrdesign.cli.common import add_config_argument
from icrdesign.config import load_config
from icrdesign.validation.export import export_flows


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_config_argument(parser)
    parser.add_argument("--out", type=Path, required=True, help="output folder")
    parser.add_argument("--design", type=Path, default=Path("results/design"),
                        help="sampling results: one folder per case with its candidates.csv")
    parser.add_argument("--validation", type=Path, default=Path("results/validation"),
                        help="the validation folder: its funnels pick the DFT candidates (none: MLIP flows only)")


def run(args: argparse.Namespace) -> int:
    written = export_flows(args.design, load_config(args.config), args.out, args.validation)
    print(json.dumps({"flows": len(written), "out": str(args.out)}))
    return 0
