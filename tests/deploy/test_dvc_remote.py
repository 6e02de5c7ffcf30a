"""The model moves through the project's DVC remotes: a real `dvc push` / `dvc pull` round trip
of the committed checkpoint, to the default folder remote of .dvc/config and to an S3 bucket on
a moto server started on loopback and configured by deploy/dvc-remote-s3.sh.

Everything runs in a git + DVC repository under tmp_path that carries the project's .dvc/config;
HOME, DVC's site cache and the AWS config files point into tmp_path too.
"""

from __future__ import annotations

import hashlib
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import boto3
import pytest
from configobj import ConfigObj

REPO = Path(__file__).resolve().parents[2]
CHECKPOINT = Path("model") / "clearmark.pt"
BIN = Path(sys.executable).parent
BUCKET = "clearmark-models"
# moto accepts any credentials; these exist only in this test's subprocess environment.
FAKE_CREDENTIALS = {"AWS_ACCESS_KEY_ID": "moto-test", "AWS_SECRET_ACCESS_KEY": "moto-test"}


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    """An environment that keeps git, DVC and the AWS clients inside tmp_path."""
    home = tmp_path / "home"
    home.mkdir()
    return {
        "PATH": f"{BIN}:/usr/bin:/bin",
        "HOME": str(home),
        "XDG_CONFIG_HOME": str(home / ".config"),
        "GIT_CONFIG_NOSYSTEM": "1",
        "DVC_NO_ANALYTICS": "1",
        "DVC_SITE_CACHE_DIR": str(tmp_path / "dvc-site-cache"),
        "DVC_GLOBAL_CONFIG_DIR": str(home / ".config" / "dvc"),
        "DVC_SYSTEM_CONFIG_DIR": str(tmp_path / "dvc-system"),
        "AWS_CONFIG_FILE": str(home / "aws-config"),
        "AWS_SHARED_CREDENTIALS_FILE": str(home / "aws-credentials"),
        "AWS_DEFAULT_REGION": "us-east-1",
        **FAKE_CREDENTIALS,
    }


def run(args: list[str], cwd: Path, env: dict[str, str]) -> str:
    done = subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, f"{args} failed:\n{done.stdout}\n{done.stderr}"
    return done.stdout


@pytest.fixture
def training_repo(tmp_path: Path, env: dict[str, str]) -> Path:
    """A git + DVC repo with the project's .dvc/config and the checkpoint tracked by DVC."""
    repo = tmp_path / "training-host"
    (repo / ".dvc").mkdir(parents=True)
    for name in (".dvc/config", ".dvc/.gitignore", ".dvcignore"):
        shutil.copy2(REPO / name, repo / name)
    run(["git", "init", "-q"], repo, env)
    (repo / CHECKPOINT).parent.mkdir()
    shutil.copy2(REPO / CHECKPOINT, repo / CHECKPOINT)
    run([str(BIN / "dvc"), "add", "-q", str(CHECKPOINT)], repo, env)
    return repo


def serving_host(training_repo: Path, tmp_path: Path) -> Path:
    """What a serving host has after `git clone`: the repo with its .dvc files, no checkpoint
    and no DVC cache (config.local is git-ignored, so it does not travel either)."""
    clone = tmp_path / "serving-host"
    shutil.copytree(
        training_repo, clone, ignore=shutil.ignore_patterns("cache", "tmp", "config.local")
    )
    (clone / CHECKPOINT).unlink()
    return clone


def test_default_remote_is_a_folder_that_works_offline(training_repo, tmp_path, env):
    remotes = ConfigObj(str(REPO / ".dvc" / "config"))
    default = remotes["core"]["remote"]
    assert "://" not in remotes[f'remote "{default}"']["url"]

    run([str(BIN / "dvc"), "push", "-q"], training_repo, env)
    clone = serving_host(training_repo, tmp_path)
    run([str(BIN / "dvc"), "pull", "-q"], clone, env)

    assert sha256(clone / CHECKPOINT) == sha256(REPO / CHECKPOINT)


@pytest.fixture
def moto_endpoint(tmp_path: Path, env: dict[str, str]) -> Iterator[str]:
    """moto's standalone S3 server on a loopback port, with an empty bucket."""
    port = free_port()
    log = (tmp_path / "moto.log").open("wb")
    server = subprocess.Popen(
        [str(BIN / "moto_server"), "-H", "127.0.0.1", "-p", str(port)],
        cwd=tmp_path, env=env, stdout=log, stderr=subprocess.STDOUT,
    )  # fmt: skip
    endpoint = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                assert server.poll() is None, (tmp_path / "moto.log").read_text()
                assert time.monotonic() < deadline, "moto_server did not listen within 30 s"
                time.sleep(0.2)
        s3(endpoint).create_bucket(Bucket=BUCKET)
        yield endpoint
    finally:
        server.terminate()
        server.wait(timeout=10)
        log.close()


def s3(endpoint: str):  # type: ignore[no-untyped-def]
    return boto3.client(
        "s3",
        endpoint_url=endpoint,
        region_name="us-east-1",
        aws_access_key_id=FAKE_CREDENTIALS["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=FAKE_CREDENTIALS["AWS_SECRET_ACCESS_KEY"],
    )


def configure_s3(repo: Path, endpoint: str, env: dict[str, str]) -> None:
    run(
        ["sh", str(REPO / "deploy" / "dvc-remote-s3.sh")],
        repo,
        {
            **env,
            "CLEARMARK_DVC_S3_URL": f"s3://{BUCKET}/dvc",
            "CLEARMARK_DVC_S3_ENDPOINT": endpoint,
        },
    )


def test_checkpoint_round_trips_through_s3(training_repo, tmp_path, env, moto_endpoint):
    configure_s3(training_repo, moto_endpoint, env)
    run([str(BIN / "dvc"), "push", "-q"], training_repo, env)

    stored = s3(moto_endpoint).list_objects_v2(Bucket=BUCKET, Prefix="dvc/")
    assert stored["KeyCount"] == 1
    assert stored["Contents"][0]["Size"] == (REPO / CHECKPOINT).stat().st_size
    assert not (training_repo / "var" / "dvc-remote").exists()  # the s3 remote was the default

    clone = serving_host(training_repo, tmp_path)
    configure_s3(clone, moto_endpoint, env)
    run([str(BIN / "dvc"), "pull", "-q"], clone, env)

    assert sha256(clone / CHECKPOINT) == sha256(REPO / CHECKPOINT)


def test_s3_settings_stay_out_of_the_committed_config(training_repo, moto_endpoint, env):
    configure_s3(training_repo, moto_endpoint, env)

    committed = (training_repo / ".dvc" / "config").read_text()
    local = ConfigObj(str(training_repo / ".dvc" / "config.local"))
    assert (REPO / ".dvc" / "config").read_text() == committed
    assert local['remote "s3"']["endpointurl"] == moto_endpoint
    assert local["core"]["remote"] == "s3"
    assert not any("secret" in key or "access_key" in key for key in local['remote "s3"'])
    tracked = subprocess.run(["git", "check-ignore", ".dvc/config.local"], cwd=training_repo,
                             env=env, capture_output=True)  # fmt: skip
    assert tracked.returncode == 0, "config.local must be git-ignored"
