"""The DFT tier's formation energies against experiment (prints JSON): eight simple compounds built from
their prototypes, computed with GPAW at their experimental cells exactly as a candidate is (MP's U values and moments,
MP2020 corrections, elemental references with the same settings), against the experimental enthalpies
MP2020 was fitted to (shipped with pymatgen). The target is an MAE of 0.10 eV/atom.

Settings: the default config's ``dft`` section (PBE, 400 eV plane-wave cutoff, Fermi-Dirac 0.05 eV;
statics, the elemental references too, see ``experiment.compare``), at 3.0 k-points per reciprocal angstrom (a 9x9x9 grid for fcc Al,
denser than the pipeline's 2.5 because four of the compounds and most references are metals). With
GPAW's PAW setups, formation energies at these settings are converged to about 0.02 eV/atom.
Run: .venv/bin/python benchmarks/validation.py --experiment   (or benchmarks/experiment.py)

``--fit-mixing`` computes the fit set instead (one fluoride per +U metal of the check, see
``experiment.MIXING_FIT_COMPOUNDS``) and writes GPAW's GGA/GGA+U mixing refit
(``src/icrdesign/defaults/gpaw_mixing_refit.yaml``) that puts them on experiment; the check's oxides
then test it out of sample.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

from icrdesign.cli.validation_common import results_only_on_stdout  # noqa: E402
from icrdesign.config import load_config  # noqa: E402
from icrdesign.validation.experiment import (  # noqa: E402
    MIXING_FIT_COMPOUNDS,
    compare,
    fit_mixing_refit,
    select,
    summary,
)
from icrdesign.validation.mp_scale import gpaw_mixing_refit, write_gpaw_mixing_refit  # noqa: E402


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--compounds", nargs="+", default=None, help="formulas to run (default: all eight)")
    parser.add_argument("--ecut", type=float, default=400.0, help="plane-wave cutoff (eV)")
    parser.add_argument("--kpoint-density", type=float, default=3.0, help="k-points per reciprocal angstrom")
    parser.add_argument("--fit-mixing", action="store_true",
                        help="compute the fit set and write GPAW's mixing refit instead of the check")
    parser.add_argument("--work", type=Path, default=None, help="work folder (default: a new temporary one); "
                        "rerunning on the same folder reuses its elemental references")
    args = parser.parse_args(argv)
    work = args.work or Path(tempfile.mkdtemp(prefix="icrdesign-experiment-"))
    config = load_config(None)
    dft = {**config["dft"], "relax": False,
           "gpaw": {**config["dft"]["gpaw"], "ecut": args.ecut, "kpoint_density": args.kpoint_density}}
    settings = {key: dft["gpaw"][key] for key in ("xc", "ecut", "kpoint_density", "smearing_width")}
    compounds = list(MIXING_FIT_COMPOUNDS) if args.fit_mixing else select(args.compounds)
    start = time.perf_counter()
    with results_only_on_stdout():
        rows = compare(compounds, dft, config["relaxation"], work)
    report = {"settings": settings | {"relax": False, "work": str(work)}, "compounds": rows, "summary": summary(rows)}
    if args.fit_mixing:
        refit = fit_mixing_refit(rows, gpaw_mixing_refit()["corrections"])
        write_gpaw_mixing_refit(refit, [compound.formula for compound in compounds], settings)
        report["gpaw_mixing_refit"] = refit
    print(json.dumps(report | {"wall_s": time.perf_counter() - start}, indent=2))


if __name__ == "__main__":
    main()
