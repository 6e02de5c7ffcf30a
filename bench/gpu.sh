#!/usr/bin/env bash
# The GPU benchmark in one call on a lent GPU machine: install what its image lacks, build the
# .mar (batchSize 1 and 8), start TorchServe on the GPU behind the gateway, measure 1 MP and
# 12 MP latency and throughput at concurrency 1/16/64, write $OUT/gpu.json. Under 9 minutes.
#
# Here, once:   bash bench/gpu-prepare.sh      (wheels and a small Java runtime into .whl/)
# There:        bash bench/gpu.sh              (the device tool's run, carry [".whl"])
# Any machine:  bash bench/gpu.sh --dry        (same steps, small photos, no GPU needed)
set -euo pipefail
cd "$(dirname "$0")/.."
OUT="${OUT:-var/bench}"
WORK="${WORK:-/tmp/clearmark-gpu}"  # the stacks' logs, archives and the unpacked JRE
mkdir -p "$OUT" "$WORK"
dry=()
if [ "${1:-}" = "--dry" ]; then dry=(--dry); fi

# Here: the project's venv, which `make install` filled. There: the machine's python, whose image
# already holds torch, aiohttp, Pillow, OpenCV, SciPy and PyYAML, given the carried wheels.
# PYTHON names another interpreter to install into.
if [ -z "${PYTHON:-}" ] && [ -x .venv/bin/python ]; then
    python=.venv/bin/python
else
    python="${PYTHON:-python3}"
    "$python" -m pip install -q --ignore-installed --no-index --no-deps --no-compile --no-cache-dir \
        .whl/*.whl
    # bench/gpu-prepare.sh sent TorchServe's frontend jar as its classes: pack it again.
    frontend=$("$python" -c 'import pathlib, ts; print(pathlib.Path(ts.__file__).parent / "frontend")')
    mkdir -p "$frontend"
    classes="$WORK/frontend-classes"
    rm -rf "$classes" && mkdir -p "$classes"
    tar -xJf .whl/model-server.tar.xz -C "$classes"
    "$python" -m zipfile -c "$frontend/model-server.jar" "$classes"/*
    rm -rf "$classes"
fi
if [ -f .whl/jre.tar.xz ]; then
    tar -xJf .whl/jre.tar.xz -C "$WORK"
    export PATH="$WORK/jre/bin:$PATH"
fi
java -version 2>&1 | head -n 1
if command -v nvidia-smi > /dev/null; then nvidia-smi --query-gpu=name,memory.total --format=csv; fi
export PYTHONUNBUFFERED=1
timeout 500 "$python" -m bench.gpu --checkpoint model/clearmark.pt --restorer model/restorer.pt --json "$OUT/gpu.json" \
    --work "$WORK" "${dry[@]}"
