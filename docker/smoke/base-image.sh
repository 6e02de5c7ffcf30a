#!/usr/bin/env bash
# The base image for building clearmark's images where no image registry is reachable: Debian 12
# from debootstrap (the Dockerfiles' own base is debian:bookworm-slim, pinned by digest), imported
# into podman as $SMOKE_BASE_IMAGE. The host's CA bundle goes in and pip and npm are pointed at
# it, for networks that reach the package registries through a TLS-inspecting proxy.
set -euo pipefail
image="${SMOKE_BASE_IMAGE:-localhost/clearmark-debian:bookworm}"
if podman image exists "$image"; then exit 0; fi
mirror=$(sed -n 's/^URIs: *//p' /etc/apt/sources.list.d/debian.sources 2>/dev/null | head -n 1)
rootfs=$(mktemp -d)
trap 'rm -rf "$rootfs"' EXIT
debootstrap --variant=minbase bookworm "$rootfs" ${mirror:+"$mirror"}
cp /etc/ssl/certs/ca-certificates.crt "$rootfs/etc/ssl/certs/host-ca.crt"
tar -C "$rootfs" -c . | podman import \
    --change "ENV PIP_CERT=/etc/ssl/certs/host-ca.crt" \
    --change "ENV NPM_CONFIG_CAFILE=/etc/ssl/certs/host-ca.crt" \
    - "$image"
