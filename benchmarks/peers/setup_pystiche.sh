#!/usr/bin/env bash
# Install pystiche 1.0.1 (the peer of the time-to-quality benchmark) in its own virtual environment,
# benchmarks/.venv-pystiche, beside ndstyle's: pystiche pins old APIs, ndstyle's environment stays clean.
#
#   bash benchmarks/peers/setup_pystiche.sh                   # PyPI's torch + torchvision
#   TORCH="torch==2.14.1 torchvision==0.29.1" bash ...         # pinned (what docs/benchmarks.md ran)
#
# torchvision's PyPI wheels need PyPI's torch build: with the local CPU build of torch 2.13.0,
# "import torchvision" fails ("operator torchvision::nms does not exist"). PyPI's (CUDA) torch runs on
# CPUs with the same oneDNN kernels; the torch version differs from ndstyle's environment.
#
# pystiche 1.0.1 reads torchvision.models.{vgg,alexnet}.model_urls, removed in torchvision 0.13;
# pystiche_peer.py puts them back in its own process (nothing in site-packages is patched).
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
venv="$here/.venv-pystiche"
python="${PYTHON:-python3}"
torch_spec="${TORCH:-torch torchvision}"
"$python" -m venv "$venv"
# shellcheck disable=SC2086
"$venv/bin/pip" install --quiet $torch_spec
"$venv/bin/pip" install --quiet "pystiche==1.0.1" safetensors numpy
"$venv/bin/python" "$here/peers/pystiche_peer.py" --version
