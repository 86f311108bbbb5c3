#!/usr/bin/env bash
# Set up everything icrdesign needs on a fresh Debian/Ubuntu machine with Python 3.11:
# system libraries (GPAW, MPI, SLURM, Chromium), a virtual environment in .venv, torch first
# (pinned, so pip never picks a multi-GB CUDA build by itself), the pinned requirements, GPAW
# built against the venv's numpy, and the project itself. Idempotent: a second run is quick.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
VENV=${ICRDESIGN_VENV:-$ROOT/.venv}
PYTHON=${PYTHON:-python3.11}
command -v "$PYTHON" >/dev/null || PYTHON=python3

SYSTEM_PACKAGES=(
  build-essential libxc-dev libfftw3-dev libopenblas-dev
  libscalapack-openmpi-dev libopenmpi-dev openmpi-bin
  slurmctld slurmd slurm-client munge
  chromium
)
missing=()
for pkg in "${SYSTEM_PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done
if ((${#missing[@]})); then
  SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO=sudo
  echo "setup: installing system packages: ${missing[*]}"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

[ -x "$VENV/bin/python" ] || "$PYTHON" -m venv "$VENV"
PIP=("$VENV/bin/python" -m pip install --disable-pip-version-check -q)
stamp="$VENV/.icrdesign-requirements.sha"
want=$(cat envs/requirements.txt envs/gpaw-siteconfig.py pyproject.toml | sha256sum | cut -d' ' -f1)
if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
  # torch before anything that depends on it.
  "${PIP[@]}" "$(grep -E '^torch==' envs/requirements.txt)"
  "${PIP[@]}" -r envs/requirements.txt
  # GPAW from source against the venv's numpy, with the Debian libraries listed in the siteconfig.
  if ! "$VENV/bin/python" -c "import gpaw" 2>/dev/null; then
    GPAW_CONFIG="$ROOT/envs/gpaw-siteconfig.py" "${PIP[@]}" --no-build-isolation -r envs/gpaw-requirements.txt
  fi
  "${PIP[@]}" --no-deps -e .
  echo "$want" > "$stamp"
fi
echo "setup: ready ($("$VENV/bin/python" -c 'import icrdesign, torch; print("icrdesign", icrdesign.__version__, "torch", torch.__version__)'))"
