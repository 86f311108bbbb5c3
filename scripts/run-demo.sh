#!/usr/bin/env bash
# Set everything up (idempotent) and run the whole demo pipeline; extra arguments go to snakemake.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
exec .venv/bin/snakemake --cores all "$@"
