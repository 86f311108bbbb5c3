"""The one way every ``icrdesign`` command fails on a user's mistake: one line naming the cause and exit
code 2, the traceback only with ``--debug``."""

from __future__ import annotations

import importlib
import subprocess
import sys
from pathlib import Path

import pytest

from icrdesign.cli import COMMANDS, main, module_name
from icrdesign.cli.common import USAGE_ERROR
from icrdesign.errors import InputError

# The arguments each command requires (paths need not exist); a new command must be listed here.
REQUIRED_ARGS: dict[str, list[str]] = {
    "dataset": ["--out", "o"],
    "encode": ["--dataset", "d.parquet", "--out", "o"],
    "train": ["--encoded", "e", "--dataset", "d.parquet", "--out", "o"],
    "sample": ["--model", "m", "--dataset", "d.parquet", "--case", "Ef_-0.5", "--out", "o"],
    "relax": ["s.cif", "--references", "r", "--out", "o"],
    "dft": ["s.cif", "--references", "r", "--mlip-references", "m", "--out", "o"],
    "validation-table": ["--out", "o"],
    "retry-failed": ["--results", "r"],
    "export-flows": ["--out", "o"],
    "hull": ["--cache", "c", "--out", "o"],
    "funnel": ["--case", "Ef_-0.5", "--candidates", "c.csv", "--dataset", "d.parquet", "--hull", "h.json", "--out", "o"],
    "report": ["--out", "o"],
    "fingerprints": ["--structures", "t.csv", "--out", "o.npz"],
}
#: The commands that read a config (``--config``).
CONFIG_COMMANDS = [command for command in REQUIRED_ARGS if command not in {"validation-table", "retry-failed"}]
NAN_MESSAGE = "config key 'sampling.min_distance': .nan is not a finite number"
TRACEBACK = "Traceback (most recent call last)"


def test_every_command_is_covered() -> None:
    assert set(REQUIRED_ARGS) == set(COMMANDS)


@pytest.fixture
def nan_config(tmp_path: Path) -> Path:
    path = tmp_path / "nan.yaml"
    path.write_text("sampling: {min_distance: .nan}\n")
    return path


@pytest.mark.parametrize("command", list(REQUIRED_ARGS))
def test_input_error_is_one_line_without_debug_and_a_traceback_with_it(
    command: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    def refuse(_args: object) -> int:
        raise InputError("broken.csv: missing columns ['id']")

    monkeypatch.setattr(importlib.import_module(module_name(command)), "run", refuse)
    assert main([command, *REQUIRED_ARGS[command]]) == USAGE_ERROR
    assert capsys.readouterr().err == f"icrdesign {command}: broken.csv: missing columns ['id']\n"

    assert main([command, *REQUIRED_ARGS[command], "--debug"]) == USAGE_ERROR
    err = capsys.readouterr().err
    assert TRACEBACK in err
    assert "in refuse" in err  # the frame that raised
    assert err.endswith(f"icrdesign {command}: broken.csv: missing columns ['id']\n")


@pytest.mark.parametrize("command", CONFIG_COMMANDS)
def test_non_finite_config_stops_every_command(
    command: str, nan_config: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.chdir(tmp_path)
    assert main([command, *REQUIRED_ARGS[command], "--config", str(nan_config)]) == USAGE_ERROR
    err = capsys.readouterr().err
    assert err == f"icrdesign {command}: invalid configuration:\n  {NAN_MESSAGE}\n"
    assert not (tmp_path / "o").exists()


def test_defect_keeps_its_traceback(monkeypatch: pytest.MonkeyPatch) -> None:
    """Only the user's mistakes are turned into a message; a bug propagates as it is."""
    def crash(_args: object) -> int:
        raise RuntimeError("a defect")

    monkeypatch.setattr(importlib.import_module(module_name("report")), "run", crash)
    with pytest.raises(RuntimeError, match="a defect"):
        main(["report", "--out", "o"])


def test_installed_command_prints_no_traceback(nan_config: Path, tmp_path: Path) -> None:
    """As the workflow runs it: a separate interpreter, the message alone on stderr, exit code 2."""
    command = [sys.executable, "-m", "icrdesign.cli", "export-flows", "--out", str(tmp_path / "o"),
               "--config", str(nan_config)]
    plain = subprocess.run(command, capture_output=True, text=True, timeout=120)
    assert plain.returncode == USAGE_ERROR
    assert TRACEBACK not in plain.stderr
    assert plain.stderr.splitlines()[-2:] == ["icrdesign export-flows: invalid configuration:", f"  {NAN_MESSAGE}"]
    debug = subprocess.run([*command, "--debug"], capture_output=True, text=True, timeout=120)
    assert debug.returncode == USAGE_ERROR
    assert TRACEBACK in debug.stderr and "ConfigError" in debug.stderr


@pytest.mark.parametrize(("content", "message"), [
    (None, "no such file"),
    ("{not json", "not a JSON record"),
    ("[1, 2]", "not a JSON record (a list, not an object)"),
])
def test_validation_table_names_a_missing_or_corrupt_record(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], content: str | None, message: str
) -> None:
    record = tmp_path / "Ef_-0.5" / "c1" / "mlip.json"
    if content is not None:
        record.parent.mkdir(parents=True)
        record.write_text(content)
    assert main(["validation-table", "--out", str(tmp_path / "validation.csv"), str(record)]) == USAGE_ERROR
    err = capsys.readouterr().err
    assert err.startswith(f"icrdesign validation-table: {record}: {message}") and err.count("\n") == 1
    assert not (tmp_path / "validation.csv").exists()


def test_retry_failed_refuses_a_results_folder_that_is_not_there(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["retry-failed", "--results", str(tmp_path / "nowhere")]) == USAGE_ERROR
    assert capsys.readouterr().err == f"icrdesign retry-failed: --results {tmp_path / 'nowhere'}: no such folder\n"
