#!/usr/bin/env bash
# `make compose-smoke`: build both images, start docker-compose.yml with its CPU override under
# podman-compose, wait for TorchServe's healthcheck and the gateway's /readyz, clean a photo
# through the published port, compare its size, and take the stack down again.
#
# On this machine (README: Deploy): podman with runc and lowered rlimits (containers.conf here),
# a debootstrap base image (base-image.sh), TORCH=cuda (PyPI's torch, which also runs on a CPU:
# the CPU wheel index is not reachable here), and podman 4.3 cannot wait for service_healthy
# (podman-compose ignores the condition below podman 4.6, and without systemd podman runs no
# healthcheck by itself), so this script runs TorchServe's healthcheck itself until it passes.
set -euo pipefail
cd "$(dirname "$0")/../.."
export CONTAINERS_CONF="$PWD/docker/smoke/containers.conf"
# Docker's image format: buildah's default (OCI) has no HEALTHCHECK, and drops the images' own
# ("HEALTHCHECK is not supported for OCI image format and will be ignored").
export BUILDAH_FORMAT=docker
base="${SMOKE_BASE_IMAGE:-localhost/clearmark-debian:bookworm}"
port="${CLEARMARK_PORT:-18000}"
export CLEARMARK_PORT="$port"
photo=metrics/examples/0-watermarked.png
python=.venv/bin/python
compose=("$(dirname "$python")/podman-compose" -p clearmark-smoke
         -f docker-compose.yml -f docker-compose.cpu.yml)

bash docker/smoke/base-image.sh
"${compose[@]}" build --build-arg "DEBIAN_IMAGE=$base" --build-arg TORCH=cuda
trap '"${compose[@]}" down -t 5 > /dev/null 2>&1 || true' EXIT
"${compose[@]}" up -d

wait_for() {  # wait_for SECONDS DESCRIPTION COMMAND...
    local deadline=$((SECONDS + $1)) what=$2
    shift 2
    until "$@" > /dev/null 2>&1; do
        if [ "$SECONDS" -ge "$deadline" ]; then
            echo "no $what within the time allowed" >&2
            "${compose[@]}" logs --tail 30 >&2 || true
            exit 1
        fi
        sleep 3
    done
    echo "$what: ok"
}
torchserve=$("${compose[@]}" ps --format '{{.Names}}' | grep torchserve)
wait_for 300 "healthy TorchServe (/ping and a real prediction)" podman healthcheck run "$torchserve"
wait_for 120 "ready gateway (/readyz)" curl -fsS "http://127.0.0.1:$port/readyz"

out=$(mktemp -d)
"$python" -m serving.clean "$photo" --url "http://127.0.0.1:$port" --out "$out"
"$python" - "$photo" "$out"/*-clearmark.* <<'PY'
import sys
from PIL import Image
sent, cleaned = (Image.open(path) for path in sys.argv[1:3])
assert cleaned.format == sent.format and cleaned.size == sent.size, (cleaned, sent)
print(f"cleaned through the containers: {sys.argv[2]} ({cleaned.format}, {cleaned.size})")
PY
rm -rf "$out"
