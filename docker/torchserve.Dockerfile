# TorchServe serving clearmark: the .mar is built in a build stage from the committed checkpoint
# (model/clearmark.pt), the settings are the repo's own config.properties (the inference API
# moved to every interface of the container, docker/torchserve_config.py) and
# handler/model-config.yaml (packed into the .mar). Versions come from pyproject.toml.
#
#   docker build -f docker/torchserve.Dockerfile --build-arg TORCH=cpu -t clearmark-torchserve .
#
# TORCH=cuda (the default) installs PyPI's torch, which bundles the CUDA runtime: the host needs
# only the NVIDIA driver and the container toolkit. TORCH=cpu installs the CPU-only build.
# Run it read-only with a tmpfs on /tmp (logs, the unpacked archive, pid file, Java's temp).
ARG DEBIAN_IMAGE=debian:bookworm-slim@sha256:3783cc01769c7b2b1b83a5c5ad96c815348e28ed7da68e2e3687004faa906251

FROM ${DEBIAN_IMAGE} AS runtime
# Debian 12's python3 is 3.11 (pyproject: >=3.11); TorchServe's frontend needs Java 17.
RUN apt-get update \
    && apt-get install -y --no-install-recommends python3 openjdk-17-jre-headless \
    && rm -rf /var/lib/apt/lists/*

# The pins, read from pyproject.toml once: the layers below are rebuilt only when a pin changes.
FROM runtime AS pins
COPY pyproject.toml docker/requirements.py /src/
RUN python3 /src/requirements.py /src/pyproject.toml torch > /src/torch.txt \
    && python3 /src/requirements.py /src/pyproject.toml torchserve torch-model-archiver pyyaml \
        pillow numpy opencv-python-headless scipy > /src/serving.txt

FROM runtime AS venv
RUN apt-get update \
    && apt-get install -y --no-install-recommends python3-venv \
    && rm -rf /var/lib/apt/lists/* \
    && python3 -m venv /opt/venv
COPY --from=pins /src/torch.txt /src/
ARG TORCH=cuda
ARG TORCH_CPU_INDEX=https://download.pytorch.org/whl/cpu
RUN case "$TORCH" in \
        cpu) /opt/venv/bin/pip install --no-cache-dir --index-url "$TORCH_CPU_INDEX" -r /src/torch.txt ;; \
        cuda) /opt/venv/bin/pip install --no-cache-dir -r /src/torch.txt ;; \
        *) echo "TORCH must be cpu or cuda, got: $TORCH" >&2; exit 2 ;; \
    esac
# What the handler imports besides torch, and TorchServe itself.
COPY --from=pins /src/serving.txt /src/
RUN /opt/venv/bin/pip install --no-cache-dir -r /src/serving.txt

FROM venv AS archive
WORKDIR /src
COPY config.properties ./
COPY handler/ handler/
COPY training/__init__.py training/checkpoint.py training/model.py training/restorer.py training/
COPY model/clearmark.pt model/restorer.pt model/
COPY docker/torchserve_config.py docker/
RUN /opt/venv/bin/python -m handler.archive --checkpoint model/clearmark.pt \
    --restorer model/restorer.pt --out /opt/model_store \
    && mkdir -p /etc/clearmark \
    && python3 docker/torchserve_config.py config.properties > /etc/clearmark/config.properties

FROM runtime
RUN useradd --system --uid 10001 --home-dir /tmp --shell /usr/sbin/nologin clearmark
COPY --from=venv /opt/venv /opt/venv
COPY --from=archive /opt/model_store /opt/model_store
COPY --from=archive /etc/clearmark/config.properties /etc/clearmark/config.properties
COPY serving/__init__.py serving/torchserve.py /opt/clearmark/serving/
COPY docker/torchserve_healthcheck.py /opt/clearmark/
# Everything TorchServe writes goes to /tmp: the only writable path (a tmpfs).
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONPATH=/opt/clearmark \
    PYTHONDONTWRITEBYTECODE=1 \
    HOME=/tmp \
    TMPDIR=/tmp \
    LOG_LOCATION=/tmp/logs \
    METRICS_LOCATION=/tmp/logs
USER clearmark
WORKDIR /tmp
HEALTHCHECK --interval=30s --timeout=30s --start-period=180s --retries=3 \
    CMD ["python3", "/opt/clearmark/torchserve_healthcheck.py", "/etc/clearmark/config.properties", "/opt/model_store"]
CMD ["torchserve", "--start", "--foreground", "--ncs", \
     "--ts-config", "/etc/clearmark/config.properties", \
     "--model-store", "/opt/model_store", "--models", "all"]
