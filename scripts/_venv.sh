# Sourced by the other scripts: makes ./.venv (Python >= 3.10) and installs
# the package with the extras named in $EXTRAS.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
PYTHON=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  if ! "$PYTHON" -m venv .venv 2>/dev/null; then
    # Debian's system Python ships venv separately.
    rm -rf .venv
    if command -v apt-get >/dev/null; then
      SUDO=$([ "$(id -u)" = 0 ] && echo "" || echo sudo)
      $SUDO apt-get update -qq && $SUDO apt-get install -y -qq python3-venv
      "$PYTHON" -m venv .venv
    else
      echo "error: '$PYTHON -m venv' failed; install Python's venv module." >&2
      exit 1
    fi
  fi
fi
.venv/bin/python -m pip install -q --upgrade pip
# PyTorch: pip would pick a CUDA build of several GB for a bare `torch`;
# TORCH_SPEC names the wheel to install first (here: the CPU build that lies
# on this machine's disk), after which the [torch] extra's range is met.
if [[ ",${EXTRAS:-}," == *,torch,* ]]; then
  .venv/bin/python -m pip install -q "${TORCH_SPEC:-torch==2.13.0}"
fi
.venv/bin/python -m pip install -q -e ".${EXTRAS:+[$EXTRAS]}"

# Debian's Fashion-MNIST (the notebooks' offline data), where apt is
# available and no other data folder is named.
ensure_fashion_mnist() {
  if [ -z "${KERAS_GUMBEL_DATA_DIR:-}" ] \
      && [ ! -e /usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz ] \
      && command -v apt-get >/dev/null; then
    local sudo
    sudo=$([ "$(id -u)" = 0 ] && echo "" || echo sudo)
    $sudo apt-get update -qq && $sudo apt-get install -y -qq dataset-fashion-mnist
  fi
}
