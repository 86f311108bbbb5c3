"""The ``icrdesign`` command: one subcommand per pipeline stage, one module per subcommand.

Each module ``icrdesign.cli.<command>`` defines ``add_arguments(parser)`` and ``run(args) -> int``;
its docstring is the command's description. :func:`icrdesign.cli.common.run_command` gives every
command the same logging and the same handling of a user's mistake. A stage module is imported only
when its subcommand runs, so ``icrdesign dataset`` does not pay for importing torch.
"""

from __future__ import annotations

import sys

from icrdesign.cli.common import run_command

COMMANDS: dict[str, str] = {
    "dataset": "build the dataset table (demo or Materials Project)",
    "encode": "encode structures to the invertible representation",
    "train": "train the property-structured VAE",
    "sample": "sample candidates for the design cases",
    "relax": "relax structures with a machine-learned potential",
    "dft": "relax + static DFT of structures",
    "validation-table": "collect the relax and DFT records into validation.csv",
    "retry-failed": "forget failed relax/DFT results so that the next run redoes them",
    "export-flows": "write candidates' atomate2 flows as JSON",
    "hull": "reference convex hull of the stability check (E_hull)",
    "funnel": "post-relaxation funnel of a case: unique, novel, stable, S.U.N. (MatterGen's protocol)",
    "report": "figures, success rates and dissimilarity report",
    "fingerprints": "structural fingerprints of a table's structures or of the training split",
}


def module_name(command: str) -> str:
    """The module that implements ``command`` (``export-flows`` -> ``icrdesign.cli.export_flows``)."""
    return f"icrdesign.cli.{command.replace('-', '_')}"


def usage() -> str:
    width = max(map(len, COMMANDS))
    lines = ["usage: icrdesign COMMAND [options]", "", "commands:"]
    lines += [f"  {name:<{width}}  {help_text}" for name, help_text in COMMANDS.items()]
    lines += ["", "`icrdesign COMMAND --help` lists a command's options; `--debug` (every command) adds the",
              "traceback to the one-line message of a configuration or input mistake."]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in {"-h", "--help"}:
        print(usage())
        return 0
    command, rest = argv[0], argv[1:]
    if command not in COMMANDS:
        print(f"icrdesign: unknown command {command!r}\n\n{usage()}", file=sys.stderr)
        return 2
    return run_command(command, module_name(command), rest)
