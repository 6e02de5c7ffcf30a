"""docker-compose.yml, its CPU override and the two Dockerfiles agree with the settings they serve:
config.properties, handler/model-config.yaml (through the archive), gateway/settings.py and
pyproject.toml. Compose is read with PyYAML, the Dockerfiles with dockerfile-parse."""

from __future__ import annotations

import ast
import importlib.metadata
import json
import re
import shlex
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml
from dockerfile_parse import DockerfileParser
from packaging.requirements import Requirement
from yarl import URL

from gateway.app import SWAGGER_UI_DIR, WIDGET_DIR
from gateway.settings import Settings
from handler.archive import PACKAGED_MODULES
from serving.torchserve import port_of, read_properties

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "docker"))
from requirements import canonical, requirements  # noqa: E402
from torchserve_config import container_config  # noqa: E402

CONFIG = read_properties(REPO / "config.properties")
HANDLER_MODULE = "handler/clearmark_handler.py"  # the archive's --handler
DIGEST = re.compile(r"@sha256:[0-9a-f]{64}$")


class Reset:
    """Compose's ``!reset`` tag: the override removes what the base file set."""


class ComposeLoader(yaml.SafeLoader):
    pass


ComposeLoader.add_constructor("!reset", lambda loader, node: Reset())


def compose(name: str) -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.load((REPO / name).read_text(), Loader=ComposeLoader)
    return loaded


BASE = compose("docker-compose.yml")
CPU = compose("docker-compose.cpu.yml")
SERVICES = BASE["services"]


def dockerfile(service: str) -> DockerfileParser:
    build = SERVICES[service]["build"]
    assert build["context"] == "."
    return DockerfileParser(path=str(REPO / build["dockerfile"]))


def final_stage(parser: DockerfileParser) -> list[dict[str, str]]:
    """The instructions after the last FROM: what the image runs with."""
    structure = [i for i in parser.structure if i["instruction"] != "COMMENT"]
    last_from = max(i for i, item in enumerate(structure) if item["instruction"] == "FROM")
    return structure[last_from:]


def instruction(stage: list[dict[str, str]], name: str) -> str:
    values = [item["value"] for item in stage if item["instruction"] == name]
    assert len(values) == 1, f"expected one {name}, found {values}"
    return values[0]


def exec_form(value: str) -> list[str]:
    """A CMD or HEALTHCHECK's JSON array (after HEALTHCHECK's options and CMD keyword)."""
    listed: list[str] = json.loads(value[value.index("[") :])
    return listed


def installed(parser: DockerfileParser) -> list[str]:
    """The distributions the image installs: the names given to docker/requirements.py."""
    names = []
    for item in parser.structure:
        if item["instruction"] == "RUN" and "requirements.py" in item["value"]:
            words = shlex.split(item["value"])
            for i, word in enumerate(words):
                if word == "/src/pyproject.toml":
                    names += words[i + 1 : words.index(">", i)]
    return names


@pytest.mark.parametrize("service", ["torchserve", "gateway"])
def test_images_pin_their_base_run_as_non_root_and_check_health(service):
    parser = dockerfile(service)
    external = [image for image in parser.parent_images if image not in {"runtime", "pins", "venv"}]
    stage = final_stage(parser)

    assert external and all(DIGEST.search(image) for image in external), external
    assert instruction(stage, "USER") not in {"root", "0"}
    assert exec_form(instruction(stage, "HEALTHCHECK"))[0] == "python3"
    assert SERVICES[service]["read_only"] is True


@pytest.mark.parametrize("service", ["torchserve", "gateway"])
def test_images_install_only_declared_versions(service):
    # Every name resolves to pyproject.toml's pinned requirement (requirements() raises if not).
    pyproject = (REPO / "pyproject.toml").read_text()

    names = installed(dockerfile(service))

    assert len(requirements(pyproject, names)) == len(names) > 0


def third_party_imports(package: Path, only: tuple[str, ...] | None = None) -> set[str]:
    """Distributions the modules of ``package`` import (those of ``only``, repo-relative paths,
    when given), by canonical name."""
    distributions = importlib.metadata.packages_distributions()
    found = set()
    for module in package.rglob("*.py"):
        if only is not None and module.relative_to(REPO).as_posix() not in only:
            continue
        for node in ast.walk(ast.parse(module.read_text())):
            if isinstance(node, ast.Import):
                tops = [alias.name.split(".")[0] for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                tops = [node.module.split(".")[0]]
            else:
                continue
            for top in tops:
                found |= {canonical(d) for d in distributions.get(top, [])}
    return found


def dependencies(names: set[str]) -> set[str]:
    """``names`` and every distribution they install (yarl, multidict... come with aiohttp)."""
    found, pending = set(), set(names)
    while pending:
        name = pending.pop()
        found.add(name)
        for line in importlib.metadata.requires(name) or []:
            requirement = Requirement(line)
            if requirement.marker is None or requirement.marker.evaluate({"extra": ""}):
                pending |= {canonical(requirement.name)} - found
    return found


def test_gateway_image_has_what_the_gateway_imports_and_no_torch():
    image = dependencies({canonical(name) for name in installed(dockerfile("gateway"))})
    imported = third_party_imports(REPO / "gateway") - {"clearmark"}  # the project itself

    assert imported <= image
    assert "torch" not in image


def test_torchserve_image_has_what_the_handler_imports():
    image = dependencies({canonical(name) for name in installed(dockerfile("torchserve"))})
    imported = set()
    for package in ("handler", "training"):
        imported |= third_party_imports(REPO / package, only=(*PACKAGED_MODULES, HANDLER_MODULE))

    assert imported - {"clearmark"} <= image


def test_torchserve_image_builds_the_archive_from_the_committed_checkpoint():
    structure = dockerfile("torchserve").structure
    (run,) = [item["value"] for item in structure if "handler.archive" in item["value"]]
    command = shlex.split(run)
    cmd = exec_form(instruction(final_stage(dockerfile("torchserve")), "CMD"))

    assert command[command.index("--checkpoint") + 1] == "model/clearmark.pt"
    assert (REPO / "model" / "clearmark.pt").is_file()
    # TorchServe serves the store's one archive under its own name (handler.archive.MODEL_NAME).
    assert cmd[cmd.index("--model-store") + 1] == command[command.index("--out") + 1]
    assert cmd[cmd.index("--models") + 1] == "all"


def test_torchserve_healthcheck_reads_the_config_and_store_torchserve_runs_with():
    stage = final_stage(dockerfile("torchserve"))
    cmd = exec_form(instruction(stage, "CMD"))
    check = exec_form(instruction(stage, "HEALTHCHECK"))

    assert check[1].endswith("torchserve_healthcheck.py")
    assert check[2:] == [cmd[cmd.index("--ts-config") + 1], cmd[cmd.index("--model-store") + 1]]


def test_torchserve_writes_only_to_its_tmpfs():
    env = dockerfile("torchserve").envs
    writable = SERVICES["torchserve"]["tmpfs"]

    assert writable == ["/tmp"]
    for variable in ("HOME", "TMPDIR", "LOG_LOCATION", "METRICS_LOCATION"):
        assert Path(env[variable]).is_relative_to("/tmp"), variable
    assert "tmpfs" not in SERVICES["gateway"]


def test_only_the_inference_api_leaves_the_torchserve_container():
    served = read_properties_text(container_config((REPO / "config.properties").read_text()))

    assert URL(served["inference_address"]).host == "0.0.0.0"
    for key in ("management_address", "metrics_address"):
        assert URL(served[key]).host == "127.0.0.1"
    for key in ("grpc_inference_address", "grpc_management_address"):
        assert served[key] == "127.0.0.1"
    assert served["enable_model_api"] == "false"
    assert SERVICES["torchserve"]["expose"] == [str(port_of(CONFIG["inference_address"]))]
    assert "ports" not in SERVICES["torchserve"]
    assert {k: v for k, v in served.items() if k != "inference_address"} == {
        k: v for k, v in CONFIG.items() if k != "inference_address"
    }


def read_properties_text(text: str) -> dict[str, str]:
    lines = (line.partition("=") for line in text.splitlines() if line and line[0] != "#")
    return {key.strip(): value.strip() for key, _, value in lines}


def test_only_the_gateway_publishes_its_own_port():
    published = [name for name, service in SERVICES.items() if "ports" in service]
    (mapping,) = SERVICES["gateway"]["ports"]
    settings = Settings.from_env(SERVICES["gateway"]["environment"])

    assert published == ["gateway"]
    assert int(mapping.rsplit(":", 1)[1]) == settings.port
    assert settings.host == "0.0.0.0"


def test_gateway_finds_torchserve_by_service_name_on_the_inference_port():
    environment = SERVICES["gateway"]["environment"]
    settings = Settings.from_env(environment)
    defaults = Settings()

    assert URL(settings.torchserve_url).host == "torchserve" and "torchserve" in SERVICES
    assert URL(settings.torchserve_url).port == port_of(CONFIG["inference_address"])
    # Compose sets only what differs from the gateway's defaults: no limit is copied here.
    assert all(key.startswith(("GATEWAY_HOST", "TORCHSERVE_HOST")) for key in environment)
    assert settings.max_upload_bytes == defaults.max_upload_bytes
    assert settings.model_name == defaults.model_name


def test_gateway_waits_for_a_healthy_torchserve_on_an_internal_network():
    networks = BASE["networks"]
    backend = set(SERVICES["torchserve"]["networks"])

    assert SERVICES["gateway"]["depends_on"]["torchserve"]["condition"] == "service_healthy"
    assert all(networks[name].get("internal") is True for name in backend)
    assert backend <= set(SERVICES["gateway"]["networks"])


def test_gpu_by_default_cpu_by_override():
    (device,) = SERVICES["torchserve"]["deploy"]["resources"]["reservations"]["devices"]
    cpu = CPU["services"]["torchserve"]
    parser = dockerfile("torchserve")
    cases = [i["value"] for i in parser.structure if '"$TORCH"' in i["value"]]

    assert device["driver"] == "nvidia" and "gpu" in device["capabilities"]
    assert SERVICES["torchserve"]["build"]["args"]["TORCH"] == "cuda"
    assert isinstance(cpu["deploy"]["resources"]["reservations"]["devices"], Reset)
    assert cpu["build"]["args"]["TORCH"] == "cpu"
    assert set(CPU["services"]) == {"torchserve"}
    assert "cpu)" in cases[0] and "cuda)" in cases[0]


def dockerignore_allows(path: str) -> bool:
    """Whether the build context keeps ``path`` (the file is '*' then '!' exceptions)."""
    kept = [line[1:] for line in (REPO / ".dockerignore").read_text().splitlines()
            if line.startswith("!")]  # fmt: skip
    return any(path == k or path.startswith(k.rstrip("/") + "/") for k in kept)


@pytest.mark.parametrize("service", ["torchserve", "gateway"])
def test_every_copied_path_exists_and_is_in_the_build_context(service):
    sources = []
    for item in dockerfile(service).structure:
        if item["instruction"] == "COPY" and not item["value"].startswith("--from"):
            sources += shlex.split(item["value"])[:-1]

    assert sources
    for source in sources:
        assert (REPO / source).exists(), source
        assert dockerignore_allows(source), source


def test_gateway_image_serves_the_npm_packages_where_the_gateway_looks_for_them():
    copies = [shlex.split(i["value"]) for i in dockerfile("gateway").structure
              if i["instruction"] == "COPY"]  # fmt: skip
    (gateway_dest,) = [c[-1] for c in copies if c[0] == "gateway/"]
    from_npm = {Path(c[-1]): c[1:-1] for c in copies if c[0] == "--from=widget"}

    root = Path(gateway_dest).parent
    assert root / WIDGET_DIR.relative_to(REPO) in from_npm
    # Of Swagger UI only the two files /api/docs loads.
    swagger_ui = from_npm[root / SWAGGER_UI_DIR.relative_to(REPO)]
    assert sorted(Path(source).name for source in swagger_ui) == [
        "swagger-ui-bundle.js",
        "swagger-ui.css",
    ]
