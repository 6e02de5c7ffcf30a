"""`clearmark`, the command installed by pyproject.toml: `clearmark clean PATH...` cleans photos
and folders through a running gateway (serving/clean.py)."""

from __future__ import annotations

import argparse
import sys

from serving import clean


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="clearmark", description="Remove visible watermarks through a clearmark gateway."
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    clean.add_arguments(commands.add_parser("clean", help="clean photos and folders of photos"))
    return clean.run(parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
