"""``make bench``: measure the handler in process and the stack end to end, in one run.

    python -m bench --checkpoint model/clearmark.pt --restorer model/restorer.pt \
        --model-store model_store [--out var/bench]

Prints one JSON document on stdout (progress goes to stderr) and writes it to <out>/bench.json,
its markdown rendering to <out>/bench.md and the stacks' logs to <out>/serving-*.log. The stacks
run on ports of their own (bench/plan.py), so a `make run` may stay up, but it competes for the
CPU: stop it for clean numbers. Exits 1 when a target is missed.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
from pathlib import Path

from bench.report import render
from bench.suite import run_bench
from serving.stack import exit_status
from serving.torchserve import REPO


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checkpoint", type=Path, required=True)
    parser.add_argument("--restorer", type=Path, default=None, help="model/restorer.pt")
    parser.add_argument("--model-store", type=Path, required=True, help="holds clearmark.mar")
    parser.add_argument("--out", type=Path, default=REPO / "var" / "bench")
    args = parser.parse_args(argv)
    out: Path = args.out.resolve()
    out.mkdir(parents=True, exist_ok=True)
    return exit_status(
        lambda: bench_and_report(args.checkpoint, args.model_store.resolve(), out, args.restorer)
    )


def bench_and_report(
    checkpoint: Path, model_store: Path, out: Path, restorer: Path | None = None
) -> int:
    """Run the benchmark, print and write its JSON and markdown; 1 when a target is missed."""
    # Progress goes to stderr: stdout carries the JSON document only (pipe it to jq).
    with contextlib.redirect_stdout(sys.stderr):
        document = run_bench(checkpoint, model_store, out, restorer)
    text = json.dumps(document, indent=2)
    (out / "bench.json").write_text(text + "\n")
    (out / "bench.md").write_text(render(document))
    print(text)
    missed = [t["name"] for t in document["targets"] if not t["met"]]
    print(f"\nbench.json and bench.md in {out}", file=sys.stderr)
    if missed:
        print(f"targets missed: {', '.join(missed)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
