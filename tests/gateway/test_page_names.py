"""The page's result names (gateway/static/names.js), run in node: the server's
Content-Disposition name, its fallback, and names made unique inside the download-all zip."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

NAMES_JS = Path(__file__).resolve().parents[2] / "gateway" / "static" / "names.js"


def run_names(expression: str) -> Any:
    """The JSON value of expression, with names.js's exports in scope, computed by node."""
    node = shutil.which("node")
    assert node is not None, "node is missing: apt-get install -y nodejs"
    script = (
        f"const names = await import({json.dumps(NAMES_JS.as_uri())});"
        f"console.log(JSON.stringify({expression}));"
    )
    done = subprocess.run(
        [node, "--input-type=module", "-e", script], capture_output=True, text=True, timeout=30
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def test_the_servers_name_is_kept_and_a_missing_one_is_made_the_same_way() -> None:
    assert run_names(
        "[names.downloadName('attachment; filename=\"IMG 1-clearmark.jpg\"', 'image/jpeg', 'x'),"
        " names.downloadName(null, 'image/webp', 'my photo.v2.webp'),"
        " names.downloadName('', 'image/png', '.png')]"
    ) == ["IMG 1-clearmark.jpg", "my_photo.v2-clearmark.webp", "image-clearmark.png"]


def test_names_in_the_zip_are_unique() -> None:
    assert run_names(
        "names.uniqueNames(['a-clearmark.jpg', 'b.png', 'a-clearmark.jpg', 'a-clearmark.jpg',"
        " 'noext', 'noext'])"
    ) == [
        "a-clearmark.jpg",
        "b.png",
        "a-clearmark (2).jpg",
        "a-clearmark (3).jpg",
        "noext",
        "noext (2)",
    ]
