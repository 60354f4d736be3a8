#!/usr/bin/env bash
# Sets up ./.venv with the [test] extra and the JAX and PyTorch backends,
# installs Debian's Fashion-MNIST where apt is available (the notebooks'
# quick runs need data), and runs the test suite once per Keras backend:
# the whole suite on TensorFlow, then on JAX and on PyTorch every module that
# is not TensorFlow-only (tests/conftest.py leaves those out). Extra
# arguments go to each pytest run. BACKENDS="jax" (say) runs only those.
EXTRAS=test,jax,torch
source "$(dirname "$0")/_venv.sh"
ensure_fashion_mnist  # for the notebooks' quick runs; skipped without apt
status=0
for backend in ${BACKENDS:-tensorflow jax torch}; do
  echo "=== KERAS_BACKEND=$backend ==="
  start=$SECONDS
  KERAS_BACKEND=$backend .venv/bin/python -m pytest "$@" || status=1
  echo "=== KERAS_BACKEND=$backend: $((SECONDS - start)) s ==="
done
exit $status
