"""The ``icrdesign`` command: one subcommand per pipeline stage.

Each stage owns its argument parser (``<module>:main(argv)``); the stage module is imported only
when its subcommand runs, so ``icrdesign dataset`` does not pay for importing torch.
"""

from __future__ import annotations

import importlib
import sys

COMMANDS: dict[str, tuple[str, str]] = {
    "dataset": ("icrdesign.data", "build the dataset table (demo or Materials Project)"),
    "encode": ("icrdesign.representation", "encode structures to the invertible representation"),
    "train": ("icrdesign.model", "train the property-structured VAE"),
    "sample": ("icrdesign.sampling", "sample candidates for the design cases"),
    "relax": ("icrdesign.validation.cli_relax", "relax structures with a machine-learned potential"),
    "dft": ("icrdesign.validation.cli_dft", "relax + static DFT of structures"),
    "export-flows": ("icrdesign.validation.cli_export", "write candidates' atomate2 flows as JSON"),
    "report": ("icrdesign.report", "figures, success rates and dissimilarity report"),
}


def usage() -> str:
    width = max(map(len, COMMANDS))
    lines = ["usage: icrdesign COMMAND [options]", "", "commands:"]
    lines += [f"  {name:<{width}}  {help_text}" for name, (_, help_text) in COMMANDS.items()]
    lines += ["", "`icrdesign COMMAND --help` lists a command's options."]
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
    module = importlib.import_module(COMMANDS[command][0])
    return int(module.main(rest) or 0)


if __name__ == "__main__":
    sys.exit(main())
