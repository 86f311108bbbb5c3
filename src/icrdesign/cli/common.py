"""What every ``icrdesign`` command shares: argument parsing, logging, and one way to fail.

A configuration or input mistake (:class:`~icrdesign.errors.ConfigError`,
:class:`~icrdesign.errors.InputError`) ends the command with one message on stderr, prefixed by the
command's name, and exit code 2, never a traceback: the user can fix it. ``--debug``, an option of
every command, adds the traceback of such a mistake (still exit code 2), for reporting a message that
does not say enough. Any other exception is a defect and propagates with its traceback.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys
import traceback
from pathlib import Path

from icrdesign.errors import ConfigError, InputError

LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
#: Exit code of a command stopped by a configuration or input mistake (argparse uses it too).
USAGE_ERROR = 2


def build_parser(command: str, module: object) -> argparse.ArgumentParser:
    """The parser of ``icrdesign COMMAND``: the module's docstring and its ``add_arguments``."""
    parser = argparse.ArgumentParser(prog=f"icrdesign {command}", description=module.__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    module.add_arguments(parser)  # type: ignore[attr-defined]
    # Added here, not by each command, so that every command has it.
    parser.add_argument("--debug", action="store_true",
                        help="on a configuration or input mistake, show its traceback as well as the message")
    return parser


def add_config_argument(parser: argparse.ArgumentParser) -> None:
    """``--config FILE``: the same option, with the same help, on every command."""
    parser.add_argument("--config", type=Path, default=None,
                        help="config YAML/JSON layered over the default config.yaml")


def add_threads_argument(parser: argparse.ArgumentParser, help_text: str) -> None:
    parser.add_argument("--threads", type=int, default=None, help=help_text)


def limit_torch_threads(threads: int | None) -> None:
    """Give torch the job's threads: more intra-op threads than the job's cores slow every other job."""
    if threads:
        import torch

        torch.set_num_threads(threads)


def run_command(command: str, module_path: str, argv: list[str]) -> int:
    """Parse ``argv`` for ``command``, set up logging and run it; a user's mistake exits with 2."""
    module = importlib.import_module(module_path)
    args = build_parser(command, module).parse_args(argv)
    logging.basicConfig(level=logging.INFO, format=LOG_FORMAT)
    try:
        return int(module.run(args) or 0)
    except (ConfigError, InputError) as error:
        if args.debug:
            traceback.print_exc()
        print(f"icrdesign {command}: {error}", file=sys.stderr)
        return USAGE_ERROR
