# clearmark: `make run` serves http://127.0.0.1:8000, `make test` runs every test.
# Both set everything up themselves: a virtualenv in .venv and the model archive.

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
INSTALLED := $(VENV)/.installed
# The upload page's ALTCHA widget, from package.json and package-lock.json (served, no CDN).
WIDGET := node_modules/altcha/dist/external/altcha.js
CHECKPOINT := model/clearmark.pt
RESTORER := model/restorer.pt
MAR := model_store/clearmark.mar
# Everything packed into the archive: it is rebuilt when any of them changes.
MAR_INPUTS := $(CHECKPOINT) $(RESTORER) handler/__init__.py handler/blendfit.py handler/clearmark_handler.py handler/imaging.py handler/fold.py handler/jobs.py handler/pipeline.py handler/tiled.py \
	handler/regions.py handler/settings.py handler/engine.py \
	handler/archive.py handler/model-config.yaml training/__init__.py training/checkpoint.py training/model.py \
	training/restorer.py

.PHONY: run test lint loadtest bench soak compose-smoke java install clean

run: java $(MAR) $(WIDGET)
	$(BIN)/python -m serving

test: java $(MAR) $(WIDGET)
	$(BIN)/python -m pytest

# Steps the upload rate past saturation against the stack (started if not running); var/loadtest/.
loadtest: java $(MAR) $(WIDGET)
	$(BIN)/python -m loadtests.run

# 500 uploads at 40 a minute through the stack, proof of work on: the gateway's memory,
# descriptors and disk afterwards (var/soak/soak.json); exits 1 when a target is missed.
soak: java $(MAR) $(WIDGET)
	$(BIN)/python -m serving.soak

# Both images built and docker-compose.yml started under podman-compose (CPU override), a photo
# cleaned through the published port, the stack taken down (README: Deploy).
compose-smoke: $(INSTALLED)
	bash docker/smoke/compose-smoke.sh

# Model-only and end-to-end speed, batching and worker memory in one run: var/bench/bench.json.
bench: java $(MAR) $(WIDGET)
	$(BIN)/python -m bench --checkpoint $(CHECKPOINT) --restorer $(RESTORER) --model-store $(dir $(MAR))

lint: $(INSTALLED)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy gateway handler

# TorchServe's frontend is Java: say exactly what to install instead of failing later.
java:
	@version=$$(java -version 2>&1 | sed -n 's/.*version "\([0-9]*\).*/\1/p' | head -n 1); \
	if [ -z "$$version" ] || [ "$$version" -lt 17 ]; then \
		echo "TorchServe needs Java 17 or newer (found: $${version:-none})."; \
		echo "Install it with:  sudo apt-get install -y openjdk-17-jre-headless"; \
		exit 1; \
	fi

install: $(INSTALLED) $(WIDGET)

$(WIDGET): package.json package-lock.json
	@command -v npm >/dev/null || { echo "The upload page's widget needs npm: sudo apt-get install -y npm"; exit 1; }
	npm ci --ignore-scripts --no-audit --no-fund
	touch $@

$(INSTALLED): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $@

$(MAR): $(INSTALLED) $(MAR_INPUTS)
	$(BIN)/python -m handler.archive --checkpoint $(CHECKPOINT) --restorer $(RESTORER) --out $(dir $(MAR))

clean:
	rm -rf model_store var
