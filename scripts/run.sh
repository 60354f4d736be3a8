#!/usr/bin/env bash
# Sets up ./.venv and runs the main job: for now the quick-start example.
EXTRAS=
source "$(dirname "$0")/_venv.sh"
exec .venv/bin/python examples/quickstart.py
