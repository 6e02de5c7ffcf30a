"""Print pyproject.toml's requirement for each distribution named, one a line, so that an image
installs exactly the versions `make install` does without repeating them.

    python3 docker/requirements.py pyproject.toml torchserve pillow > requirements.txt
"""

from __future__ import annotations

import re
import sys
import tomllib
from pathlib import Path

NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*")


def canonical(name: str) -> str:
    """The PEP 503 form: case and runs of ``-_.`` do not matter."""
    return re.sub(r"[-_.]+", "-", name).lower()


def declared(pyproject: str) -> dict[str, str]:
    """Every requirement of the project's dependencies, by canonical distribution name."""
    dependencies = tomllib.loads(pyproject)["project"]["dependencies"]
    found = {}
    for requirement in dependencies:
        match = NAME.match(requirement)
        if match is None:
            raise ValueError(f"cannot read the requirement {requirement!r}")
        found[canonical(match.group())] = requirement
    return found


def requirements(pyproject: str, names: list[str]) -> list[str]:
    """The requirements of ``names`` in order; a name the project does not declare is an error,
    so that an image never installs an unpinned extra."""
    known = declared(pyproject)
    missing = [name for name in names if canonical(name) not in known]
    if missing:
        raise KeyError(f"not in pyproject.toml's dependencies: {', '.join(missing)}")
    return [known[canonical(name)] for name in names]


def main() -> None:
    pyproject, *names = sys.argv[1:]
    print("\n".join(requirements(Path(pyproject).read_text(), names)))


if __name__ == "__main__":
    main()
