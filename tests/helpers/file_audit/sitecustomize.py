"""Records which files under ``results/`` each ``icrdesign`` command reads and writes.

Put this folder on PYTHONPATH and ICRDESIGN_FILE_AUDIT=<folder> in the environment of a Snakemake
run: every Python process whose command line runs ``icrdesign.cli`` then leaves
``<folder>/<pid>.json`` with its command line, the files it opened for reading and the files it
renamed into place (how atomic writes land). tests/workflow/test_e2e.py compares them with what each rule
declares, so a rule that reads a file no rule declares fails a test.
"""

import atexit
import json
import os
import sys

_FOLDER = os.environ.get("ICRDESIGN_FILE_AUDIT")
_ARGV = list(getattr(sys, "orig_argv", sys.argv))

if _FOLDER and "icrdesign.cli" in _ARGV:
    _reads: set[str] = set()
    _writes: set[str] = set()
    _pid = os.getpid()

    def _record(event: str, args: tuple) -> None:
        if event == "open" and isinstance(args[0], (str, bytes, os.PathLike)):
            mode, flags = args[1], args[2]
            # builtins.open gives a mode string; os.open (tempfile.mkstemp) gives None and its flags.
            writes = set(mode) & set("wax+") if isinstance(mode, str) else flags & (os.O_WRONLY | os.O_RDWR)
            if not writes:
                _reads.add(os.path.abspath(os.fsdecode(args[0])))
        elif event == "os.rename":
            _writes.add(os.path.abspath(os.fsdecode(args[1])))

    def _save() -> None:
        if os.getpid() != _pid:  # a forked worker inherits the hook; its parent reports
            return
        with open(os.path.join(_FOLDER, f"{_pid}.json"), "w") as handle:
            json.dump({"argv": _ARGV, "cwd": os.getcwd(), "reads": sorted(_reads), "writes": sorted(_writes)}, handle)

    sys.addaudithook(_record)
    atexit.register(_save)
