#!/usr/bin/env bash
# Prepare bench/gpu.sh's carry here, since the GPU machine reaches no registry: the wheels its
# image lacks (TorchServe, its archiver, aiohttp-jinja2, enum-compat) and a Java runtime, in the
# git-ignored .whl/. The device tool carries at most 64 MiB with the repo, and TorchServe's wheel
# (42 MB, its Java frontend) plus a JRE do not fit as they come, so:
# - the frontend's jar travels as its classes in .whl/model-server.tar.xz (19 MB) and
#   bench/gpu.sh packs the jar again after installing the wheel, which travels without it;
# - the JRE is cut by jlink to the modules the frontend uses, then xz'd (17 MB).
# Needs openjdk-17-jdk-headless here (jdeps, jlink), unzip, zip and xz.
set -euo pipefail
cd "$(dirname "$0")/.."
python=python3
if [ -x .venv/bin/python ]; then python=.venv/bin/python; fi
rm -rf .whl && mkdir -p .whl
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
pins=$("$python" docker/requirements.py pyproject.toml torchserve torch-model-archiver aiohttp-jinja2)
# shellcheck disable=SC2086
"$python" -m pip download -q --no-deps --only-binary=:all: -d .whl $pins enum-compat

jar=ts/frontend/model-server.jar
unzip -q .whl/torchserve-*.whl "$jar" -d "$work"
mkdir "$work/classes" && unzip -q "$work/$jar" -d "$work/classes"
tar -C "$work/classes" -c . | xz -9 -T2 > .whl/model-server.tar.xz
zip -q -d .whl/torchserve-*.whl "$jar"

# jdeps reads the fat jar's classes as one class path: the module descriptors it bundles (JUnit's)
# and its multi-release copies would make it look for modules that are not there.
find "$work/classes" -name module-info.class -delete && rm -rf "$work/classes/META-INF/versions"
modules=$(jdeps --ignore-missing-deps --print-module-deps "$work/classes")
# Loaded by name at run time, which jdeps cannot see: elliptic-curve TLS, zip file systems and
# the JVM's management beans (TorchServe's system metrics). java.desktop stays for java.beans
# (log4j needs it) but without its graphics and sound libraries.
jlink --add-modules "$modules,jdk.crypto.ec,jdk.zipfs,jdk.management" --strip-debug \
    --no-header-files --no-man-pages --output "$work/jre" \
    --exclude-files='**lib/libawt*,**lib/libfontmanager.so,**lib/libjsound.so,**lib/libsplashscreen.so,**lib/libmlib_image.so,**lib/liblcms.so,**lib/libjavajpeg.so'
tar -C "$work" -c jre | xz -9 -T2 > .whl/jre.tar.xz
du -ch .whl/* | tail -n 1
