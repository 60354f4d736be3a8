#!/usr/bin/env bash
# Sets up ./.venv, installs Debian's Fashion-MNIST where apt is available
# (the notebooks' quick runs need data), and runs the test suite. Extra
# arguments go to pytest.
EXTRAS=test
source "$(dirname "$0")/_venv.sh"
ensure_fashion_mnist  # for the notebooks' quick runs; skipped without apt
exec .venv/bin/python -m pytest "$@"
