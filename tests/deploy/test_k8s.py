"""The Kubernetes manifests (deploy/k8s) agree with the settings they serve and with the compose
deployment: both overlays are rendered by real kustomize (`kubectl kustomize`, or `kustomize
build`), every object is checked against the Kubernetes API schema with kubernetes-validate, and
the values are compared with config.properties, gateway/settings.py, the Dockerfiles and
make bench's measurements. Nothing is applied to a cluster."""

from __future__ import annotations

import ast
import json
import re
import shutil
import subprocess
from typing import Any

import kubernetes_validate
import pytest
import yaml

from bench.targets import TARGETS
from gateway.app import create_app
from gateway.settings import Settings
from handler.archive import MODEL_NAME
from serving.torchserve import port_of
from tests.deploy.test_containers import (
    CONFIG,
    CPU,
    REPO,
    SERVICES,
    dockerfile,
    final_stage,
    instruction,
)

K8S = REPO / "deploy" / "k8s"
OVERLAYS = ("cpu", "gpu")
# The schemas the objects must fit: 1.35, the oldest minor release in upstream's support window
# (the three newest, 1.35-1.37) when these were written, so newer clusters serve every API used
# here too. Strict: a misspelt or misplaced field is an error, not silently dropped.
KUBERNETES_VERSION = "1.35.0"
BENCH = json.loads((REPO / "docs" / "results" / "bench.json").read_text())
GIB = 2**30
MIB = 2**20
# The secret the operator creates (gateway.yaml's comment says how); never in the repo.
POW_SECRET = "clearmark-proof-of-work"


def kustomize() -> list[str] | None:
    """The command that renders a kustomization directory, if this machine has one."""
    if shutil.which("kubectl"):
        return ["kubectl", "kustomize"]
    if shutil.which("kustomize"):
        return ["kustomize", "build"]
    return None


def render(overlay: str) -> list[dict[str, Any]]:
    command = kustomize()
    if command is None:
        pytest.skip("no kustomize: install kubectl (kubectl kustomize) or kustomize")
    out = subprocess.run(
        [*command, str(K8S / "overlays" / overlay)], check=True, capture_output=True, text=True
    ).stdout
    return [doc for doc in yaml.safe_load_all(out) if doc]


@pytest.fixture(scope="module", params=OVERLAYS)
def overlay(request: pytest.FixtureRequest) -> tuple[str, list[dict[str, Any]]]:
    return request.param, render(request.param)


def only(objects: list[dict[str, Any]], kind: str, name: str) -> dict[str, Any]:
    (found,) = [o for o in objects if o["kind"] == kind and o["metadata"]["name"] == name]
    return found


def container(objects: list[dict[str, Any]], name: str) -> dict[str, Any]:
    """The one container of Deployment ``name``."""
    (found,) = only(objects, "Deployment", name)["spec"]["template"]["spec"]["containers"]
    return found


def pod_labels(objects: list[dict[str, Any]], name: str) -> dict[str, str]:
    labels: dict[str, str] = only(objects, "Deployment", name)["spec"]["template"]["metadata"][
        "labels"
    ]
    return labels


def quantity(value: str | int) -> float:
    """A Kubernetes quantity as a number: "2Gi" -> bytes, "250m" -> 0.25 cores."""
    suffixes = {"Ki": 2**10, "Mi": MIB, "Gi": GIB, "m": 1e-3}
    text = str(value)
    for suffix, scale in suffixes.items():
        if text.endswith(suffix):
            return float(text.removesuffix(suffix)) * scale
    return float(text)


def env_of(objects: list[dict[str, Any]]) -> dict[str, str]:
    """The gateway's environment, a secret's value replaced by where it comes from."""
    env = {}
    for item in container(objects, "gateway")["env"]:
        if "valueFrom" in item:
            ref = item["valueFrom"]["secretKeyRef"]
            env[item["name"]] = f"secret:{ref['name']}/{ref['key']}"
        else:
            env[item["name"]] = item["value"]
    return env


def env_names_read_by_settings() -> set[str]:
    """The variable names Settings.from_env reads: the string constants in its body."""
    tree = ast.parse((REPO / "gateway" / "settings.py").read_text())
    (from_env,) = [n for n in ast.walk(tree) if isinstance(n, ast.FunctionDef)
                   and n.name == "from_env"]  # fmt: skip
    return {
        node.value
        for node in ast.walk(from_env)
        if isinstance(node, ast.Constant)
        and isinstance(node.value, str)
        and re.fullmatch(r"[A-Z][A-Z0-9_]+", node.value)
    }


def healthcheck_options(service: str) -> dict[str, str]:
    """The --name=value options of the image's HEALTHCHECK, e.g. {"interval": "30s"}."""
    value = instruction(final_stage(dockerfile(service)), "HEALTHCHECK")
    options = value[: value.index("CMD")].split()
    return dict(option.removeprefix("--").split("=", 1) for option in options)


def seconds(duration: str) -> int:
    return int(duration.removesuffix("s"))


def test_every_object_fits_the_kubernetes_schema(overlay):
    _, objects = overlay
    kinds = {o["kind"] for o in objects}

    for obj in objects:
        kubernetes_validate.validate(obj, KUBERNETES_VERSION, strict=True)
    assert kinds == {
        "Deployment",
        "Service",
        "HorizontalPodAutoscaler",
        "PodDisruptionBudget",
        "NetworkPolicy",
    }


def test_the_validator_refuses_a_misplaced_field(overlay):
    # The check above would pass anything if strict validation let unknown fields through.
    _, objects = overlay
    broken = json.loads(json.dumps(only(objects, "Deployment", "gateway")))
    broken["spec"]["template"]["spec"]["containers"][0]["readinessProbe"]["path"] = "/readyz"

    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(broken, KUBERNETES_VERSION, strict=True)


def test_containers_listen_on_the_ports_the_settings_name(overlay):
    _, objects = overlay
    gateway_port = container(objects, "gateway")["ports"][0]["containerPort"]
    inference_port = port_of(CONFIG["inference_address"])
    (torchserve_port,) = [p["containerPort"] for p in container(objects, "torchserve")["ports"]]
    service = only(objects, "Service", "torchserve")["spec"]

    assert gateway_port == Settings.from_env(env_of(objects)).port == Settings().port
    assert torchserve_port == inference_port
    assert [p["port"] for p in service["ports"]] == [inference_port]


def test_gateway_environment_is_read_by_its_settings(overlay):
    _, objects = overlay
    env = env_of(objects)
    settings = Settings.from_env(env)
    redis = only(objects, "Service", "redis")["spec"]["ports"][0]["port"]

    assert set(env) <= env_names_read_by_settings()
    assert settings.host == "0.0.0.0"
    assert settings.torchserve_url == f"http://torchserve:{port_of(CONFIG['inference_address'])}"
    assert settings.model_name == MODEL_NAME
    assert settings.redis_url == f"redis://redis:{redis}/0"
    assert settings.proof_of_work_key == f"secret:{POW_SECRET}/key"
    # Limits are not copied here: what is not set keeps gateway/settings.py's defaults.
    assert settings.max_upload_bytes == Settings().max_upload_bytes
    assert settings.proof_of_work and settings.rate_limited


def test_proof_of_work_key_comes_from_a_secret_the_operator_creates(overlay):
    _, objects = overlay
    (item,) = [e for e in container(objects, "gateway")["env"]
               if e["name"] == "GATEWAY_PROOF_OF_WORK_KEY"]  # fmt: skip
    comments = " ".join(
        line.strip().lstrip("#").strip().rstrip("\\")
        for line in (K8S / "base" / "gateway.yaml").read_text().splitlines()
        if line.strip().startswith("#")
    )
    command = re.search(r"kubectl create secret generic (\S+)\s+--from-literal=(\w+)=", comments)

    assert item["valueFrom"]["secretKeyRef"] == {"name": POW_SECRET, "key": "key"}
    assert command is not None and command.groups() == (POW_SECRET, "key")
    assert "Secret" not in {o["kind"] for o in objects}


def test_probes_use_the_healthcheck_endpoints_and_timing(overlay):
    _, objects = overlay
    routes = {resource.canonical for resource in create_app(Settings()).router.resources()}
    gateway = container(objects, "gateway")
    torchserve = container(objects, "torchserve")

    assert gateway["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert gateway["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert {"/readyz", "/healthz"} <= routes
    # TorchServe's own health API, the one docker/torchserve_healthcheck.py asks first.
    assert "/ping" in (REPO / "docker" / "torchserve_healthcheck.py").read_text()
    for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
        assert torchserve[probe]["httpGet"]["path"] == "/ping"
    for service, spec in (("gateway", gateway), ("torchserve", torchserve)):
        options = healthcheck_options(service)
        startup = spec["startupProbe"]
        for probe in ("readinessProbe", "livenessProbe"):
            assert spec[probe]["periodSeconds"] == seconds(options["interval"])
            assert spec[probe]["failureThreshold"] == int(options["retries"])
            assert spec[probe]["httpGet"]["port"] == spec["ports"][0]["name"]
        assert startup["periodSeconds"] * startup["failureThreshold"] == seconds(
            options["start-period"]
        )


def test_gpu_overlay_asks_for_a_gpu_and_the_cuda_image(overlay):
    name, objects = overlay
    torchserve = container(objects, "torchserve")
    limits = torchserve["resources"]["limits"]
    requests = torchserve["resources"]["requests"]

    if name == "gpu":
        assert limits["nvidia.com/gpu"] == 1
        assert torchserve["image"] == SERVICES["torchserve"]["image"]
        assert SERVICES["torchserve"]["build"]["args"]["TORCH"] == "cuda"
    else:
        assert "nvidia.com/gpu" not in limits | requests
        assert torchserve["image"] == CPU["services"]["torchserve"]["image"]
        assert CPU["services"]["torchserve"]["build"]["args"]["TORCH"] == "cpu"
    assert container(objects, "gateway")["image"] == SERVICES["gateway"]["image"]


def test_torchserve_memory_covers_the_measured_worker_peak(overlay):
    _, objects = overlay
    resources = container(objects, "torchserve")["resources"]
    (bound,) = [t for t in TARGETS if t.name == "worker_peak_gib"]
    peak_gib = BENCH["end_to_end"]["largest_input"]["worker_peak_gib"]

    assert quantity(resources["requests"]["memory"]) >= peak_gib * GIB
    assert quantity(resources["limits"]["memory"]) == bound.limit * GIB
    assert quantity(resources["requests"]["cpu"]) == BENCH["machine"]["cores"]


def test_gateway_memory_limit_holds_every_upload_in_flight(overlay):
    _, objects = overlay
    resources = container(objects, "gateway")["resources"]
    settings = Settings()
    # Each upload in flight: a photo and a mask, and TorchServe's answer.
    per_upload = 2 * settings.max_upload_bytes + settings.max_answer_bytes
    bodies = settings.max_in_flight * per_upload

    assert quantity(resources["limits"]["memory"]) >= bodies + quantity(
        resources["requests"]["memory"]
    )


def test_autoscaler_scales_the_gateway_no_further_than_torchserve_queues(overlay):
    _, objects = overlay
    hpa = only(objects, "HorizontalPodAutoscaler", "gateway")["spec"]
    deployment = only(objects, "Deployment", "gateway")

    assert hpa["scaleTargetRef"] == {"apiVersion": "apps/v1", "kind": "Deployment",
                                     "name": "gateway"}  # fmt: skip
    assert deployment["spec"]["replicas"] == hpa["minReplicas"] == 2
    # Beyond this many gateways TorchServe's queue would fill before their own 503.
    assert hpa["maxReplicas"] * Settings().max_in_flight <= int(CONFIG["job_queue_size"])
    assert "cpu" in container(objects, "gateway")["resources"]["requests"]


def selects(selector: dict[str, str], labels: dict[str, str]) -> bool:
    return selector.items() <= labels.items()


def test_selectors_match_the_pods_they_mean(overlay):
    _, objects = overlay
    pdb = only(objects, "PodDisruptionBudget", "gateway")["spec"]
    deployments = [o["metadata"]["name"] for o in objects if o["kind"] == "Deployment"]
    others = {name: pod_labels(objects, name) for name in deployments}

    assert pdb["minAvailable"] == 1
    assert selects(pdb["selector"]["matchLabels"], pod_labels(objects, "gateway"))
    for name in deployments:
        deployment = only(objects, "Deployment", name)["spec"]
        service = only(objects, "Service", name)["spec"]
        matched = [other for other, labels in others.items()
                   if selects(service["selector"], labels)]  # fmt: skip
        assert matched == [name]
        assert selects(deployment["selector"]["matchLabels"], pod_labels(objects, name))


def test_only_the_gateway_is_exposed_and_only_it_reaches_torchserve_and_redis(overlay):
    _, objects = overlay
    services = {o["metadata"]["name"]: o["spec"] for o in objects if o["kind"] == "Service"}
    policies = [o["spec"] for o in objects if o["kind"] == "NetworkPolicy"]
    gateway = pod_labels(objects, "gateway")

    assert services["torchserve"]["type"] == services["redis"]["type"] == "ClusterIP"
    assert services["gateway"]["type"] == "LoadBalancer"
    for name, port in (("torchserve", port_of(CONFIG["inference_address"])), ("redis", 6379)):
        (policy,) = [p for p in policies if selects(p["podSelector"]["matchLabels"],
                                                    pod_labels(objects, name))]  # fmt: skip
        (rule,) = policy["ingress"]
        (source,) = rule["from"]
        assert policy["policyTypes"] == ["Ingress"]
        assert selects(source["podSelector"]["matchLabels"], gateway)
        assert not selects(source["podSelector"]["matchLabels"], pod_labels(objects, name))
        assert [p["port"] for p in rule["ports"]] == [port]


def useradd_uid(service: str) -> int:
    (run,) = [i["value"] for i in final_stage(dockerfile(service)) if "useradd" in i["value"]]
    return int(run.split("--uid", 1)[1].split()[0])


def test_pods_run_as_the_images_users_with_read_only_roots(overlay):
    _, objects = overlay
    for name in ("gateway", "torchserve", "redis"):
        pod = only(objects, "Deployment", name)["spec"]["template"]["spec"]
        (spec,) = pod["containers"]
        assert pod["securityContext"]["runAsNonRoot"] is True
        assert pod["automountServiceAccountToken"] is False
        assert spec["securityContext"]["readOnlyRootFilesystem"] is True
        assert spec["securityContext"]["allowPrivilegeEscalation"] is False
        assert spec["securityContext"]["capabilities"]["drop"] == ["ALL"]
    for name in ("gateway", "torchserve"):
        pod = only(objects, "Deployment", name)["spec"]["template"]["spec"]
        assert pod["securityContext"]["runAsUser"] == useradd_uid(name)


def test_writable_only_where_compose_mounts_a_tmpfs(overlay):
    _, objects = overlay

    def mounts(name: str) -> list[str]:
        return [m["mountPath"] for m in container(objects, name).get("volumeMounts", [])]

    volumes = only(objects, "Deployment", "torchserve")["spec"]["template"]["spec"]["volumes"]

    assert mounts("torchserve") == SERVICES["torchserve"]["tmpfs"]
    assert all("emptyDir" in volume for volume in volumes)
    assert mounts("gateway") == [] and "tmpfs" not in SERVICES["gateway"]


def test_torchserve_runs_the_images_command_and_config(overlay):
    # The management API is off and only inference leaves the container because the image's
    # config.properties says so (tests/deploy/test_containers.py); nothing here overrides it.
    _, objects = overlay
    torchserve = container(objects, "torchserve")

    assert not {"command", "args", "env", "envFrom"} & set(torchserve)
    assert len(torchserve["ports"]) == 1
