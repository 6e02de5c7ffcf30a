"""``make loadtest``: step the upload rate past saturation and check the mission target.

    python -m loadtests.run [--host http://127.0.0.1:8000] [--out var/loadtest] [--no-start]

Unless ``--no-start`` is given or the host already answers /readyz, starts the stack with
``python -m serving`` (its log in <out>/serving.log), with the proof of work and the per-client
limits off (serving/stack.py: MEASUREMENT_ENV), and stops it at the end, also on errors and
Ctrl-C. Against a running stack with the proof of work on, every upload solves a challenge
before it is sent (serving/client.py), outside the time measured. Runs locust headless with
the schedule of loadtests/schedule.py (LOADTEST_STAGE_SECONDS shortens every stage) and writes
under <out>: locust's own locust_*.csv, locust.html and locust.log, records.json (every
request), summary.json and throughput_latency.png. Prints the summary and exits 1 when the run
misses the target (any failure, or p95 at the mission rate).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from dataclasses import asdict
from pathlib import Path

from gateway.settings import Settings
from loadtests.analysis import RECORDS_ENV, plot, problems, read_records, summarize, table
from loadtests.schedule import MISSION_RATE, P95_TARGET_S, stages_from_env
from serving.__main__ import gateway_ready
from serving.client import proof_of_work_headers
from serving.stack import (
    MEASUREMENT_NOTE,
    GatewayError,
    exit_status,
    start_stack,
    stop_stack,
    wait_until_ready,
)
from serving.torchserve import REPO

LOCUSTFILE = Path(__file__).with_name("locustfile.py")
# Locust exits 1 when a request failed, which the summary reports; anything else is its own error.
LOCUST_OK_STATUSES = (0, 1)


def run_locust(host: str, out: Path, records: Path) -> int:
    """Locust's exit status; its output goes to <out>/locust.log."""
    command = [
        sys.executable, "-m", "locust", "-f", str(LOCUSTFILE), "--headless", "--host", host,
        "--csv", str(out / "locust"), "--html", str(out / "locust.html"), "--only-summary",
    ]  # fmt: skip
    env = {**os.environ, RECORDS_ENV: str(records)}
    with (out / "locust.log").open("wb") as log_file:
        # From the repository root: `python -m` puts it on sys.path for the locustfile's imports.
        return subprocess.run(
            command, cwd=REPO, env=env, stdout=log_file, stderr=subprocess.STDOUT, check=False
        ).returncode


def load_test(host: str, out: Path, start: bool) -> int:
    """Locust's exit status, with the stack started around it when ``start`` and needed."""
    stack = None
    try:
        if not gateway_ready(host):
            if not start:
                raise GatewayError(f"no ready gateway at {host} (and --no-start)")
            log = out / "serving.log"
            print(
                f"starting the stack: python -m serving ({MEASUREMENT_NOTE}; log: {log}) ...",
                flush=True,
            )
            stack = start_stack(host, log)
            wait_until_ready(host, stack, log)
        elif proof_of_work_headers(host):
            print(
                f"{host} has the proof of work on: every upload solves a challenge first "
                "(not timed); its per-client limits, if on, will refuse most of this load "
                "from one address (429)",
                flush=True,
            )
        stages = stages_from_env()
        minutes = sum(seconds for seconds, _ in stages) / 60
        rates = ", ".join(str(rate) for _, rate in stages)
        print(f"load test of {host}: {rates} uploads/min, {minutes:.1f} min ...", flush=True)
        return run_locust(host, out, out / "records.json")
    finally:
        if stack is not None:
            stop_stack(stack)


def main(argv: list[str] | None = None) -> int:
    settings = Settings.from_env()
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default=f"http://{settings.host}:{settings.port}")
    parser.add_argument("--out", type=Path, default=REPO / "var" / "loadtest")
    parser.add_argument("--no-start", action="store_true", help="never start the stack")
    args = parser.parse_args(argv)
    out: Path = args.out
    out.mkdir(parents=True, exist_ok=True)
    return exit_status(lambda: load_test_and_report(args.host.rstrip("/"), out, not args.no_start))


def load_test_and_report(host: str, out: Path, start: bool) -> int:
    """Run the load test, write its summary and plot, and say whether the target was met."""
    records = out / "records.json"
    records.unlink(missing_ok=True)
    status = load_test(host, out, start=start)
    if status not in LOCUST_OK_STATUSES or not records.is_file():
        print(f"locust failed (exit status {status}); see {out / 'locust.log'}", file=sys.stderr)
        return 1

    stages, requests = read_records(records)
    summary = summarize(requests, stages)
    found = problems(summary)
    document = {
        "mission_rate_per_min": MISSION_RATE,
        "p95_target_s": P95_TARGET_S,
        "stages": [asdict(s) for s in summary],
        "problems": found,
    }
    (out / "summary.json").write_text(json.dumps(document, indent=2) + "\n")
    plot(summary, out / "throughput_latency.png")
    print(table(summary))
    print(f"\nsummary.json, throughput_latency.png, locust.html and CSVs in {out}")
    if found:
        print("target missed:", *(f"  - {problem}" for problem in found), sep="\n")
        return 1
    print(f"target met: no failure, p95 <= {P95_TARGET_S:g} s at {MISSION_RATE} uploads/min")
    return 0


if __name__ == "__main__":
    sys.exit(main())
