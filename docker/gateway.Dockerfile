# The gateway: aiohttp, the upload page and the API, without torch. Its settings are the ones of
# gateway/settings.py, from the environment (docker-compose.yml sets only where TorchServe is and
# that it listens on every interface of the container); versions come from pyproject.toml.
#
#   docker build -f docker/gateway.Dockerfile -t clearmark-gateway .
ARG DEBIAN_IMAGE=debian:bookworm-slim@sha256:3783cc01769c7b2b1b83a5c5ad96c815348e28ed7da68e2e3687004faa906251

FROM ${DEBIAN_IMAGE} AS runtime
RUN apt-get update \
    && apt-get install -y --no-install-recommends python3 \
    && rm -rf /var/lib/apt/lists/*

# The upload page's proof-of-work widget, from package.json and package-lock.json as `make` does.
FROM ${DEBIAN_IMAGE} AS widget
RUN apt-get update \
    && apt-get install -y --no-install-recommends npm \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY package.json package-lock.json ./
RUN npm ci --ignore-scripts --no-audit --no-fund

FROM runtime AS pins
COPY pyproject.toml docker/requirements.py /src/
RUN python3 /src/requirements.py /src/pyproject.toml aiohttp aiohttp-jinja2 jinja2 pillow \
        altcha limits redis > /src/gateway.txt

FROM runtime AS venv
RUN apt-get update \
    && apt-get install -y --no-install-recommends python3-venv \
    && rm -rf /var/lib/apt/lists/* \
    && python3 -m venv /opt/venv
COPY --from=pins /src/gateway.txt /src/
RUN /opt/venv/bin/pip install --no-cache-dir -r /src/gateway.txt

FROM runtime
RUN useradd --system --uid 10001 --no-create-home --shell /usr/sbin/nologin clearmark
COPY --from=venv /opt/venv /opt/venv
COPY gateway/ /opt/clearmark/gateway/
COPY --from=widget /src/node_modules/altcha/dist /opt/clearmark/node_modules/altcha/dist
# fflate's browser module: the page's "download all" zip (gateway/app.py serves the folder).
COPY --from=widget /src/node_modules/fflate/esm/browser.js /opt/clearmark/node_modules/fflate/esm/
# Only what /api/docs loads of Swagger UI (gateway/app.py serves the folder).
COPY --from=widget /src/node_modules/swagger-ui-dist/swagger-ui-bundle.js \
    /src/node_modules/swagger-ui-dist/swagger-ui.css \
    /opt/clearmark/node_modules/swagger-ui-dist/
COPY docker/gateway_healthcheck.py /opt/clearmark/
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONPATH=/opt/clearmark \
    PYTHONDONTWRITEBYTECODE=1
USER clearmark
WORKDIR /opt/clearmark
HEALTHCHECK --interval=30s --timeout=30s --start-period=30s --retries=3 \
    CMD ["python3", "/opt/clearmark/gateway_healthcheck.py"]
CMD ["python3", "-m", "gateway"]
