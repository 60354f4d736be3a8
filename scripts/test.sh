#!/usr/bin/env bash
# Sets up ./.venv and runs the test suite. Extra arguments go to pytest.
EXTRAS=test
source "$(dirname "$0")/_venv.sh"
exec .venv/bin/python -m pytest "$@"
