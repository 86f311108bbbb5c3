"""The two kinds of error a user can fix: a bad configuration value and a bad input file.

The command-line wrapper (``icrdesign.cli.common``) turns either into a one-line message and exit
code 2; anything else is a defect and keeps its traceback.
"""

from __future__ import annotations


class ConfigError(ValueError):
    """A configuration value is missing, unknown, of the wrong type or out of range."""


class InputError(ValueError):
    """An input file is missing, unreadable or does not hold what the stage needs (the message names it)."""
