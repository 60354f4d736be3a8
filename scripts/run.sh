#!/usr/bin/env bash
# The main job: sets up ./.venv (with the notebooks' extras), installs
# Debian's Fashion-MNIST where apt is available and no data folder is named,
# and runs every notebook headless at full scale, saving the executed
# notebooks in place and the results table in notebooks/results.md.
# Arguments go to scripts/run_notebooks.py (e.g. --quick --output-dir DIR).
EXTRAS=notebooks
source "$(dirname "$0")/_venv.sh"
ensure_fashion_mnist
exec .venv/bin/python scripts/run_notebooks.py "$@"
