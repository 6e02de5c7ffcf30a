"""A shortened `make soak` through the real stack: every upload solves its proof of work and
is cleaned, the gateway's memory and descriptors hold, nothing lands on disk."""

from __future__ import annotations

import json

import pytest

from handler.archive import build_archive
from serving.soak import run
from serving.torchserve import PORT_KEYS, REPO
from tests.test_integration import free_ports

pytestmark = pytest.mark.integration


def test_a_short_soak_meets_every_target(tmp_path):
    store = tmp_path / "store"
    build_archive(REPO / "model" / "clearmark.pt", store)
    ports = tuple(free_ports(1 + len(PORT_KEYS)))

    status = run(uploads=24, per_minute=240, out=tmp_path / "soak", model_store=store, ports=ports)

    report = json.loads((tmp_path / "soak" / "soak.json").read_text())
    assert report["problems"] == [], report
    assert status == 0
    assert report["statuses"] == {"200": 24}
    assert report["files_in_tmpdir"] == [] and report["files_held_open"] == []
