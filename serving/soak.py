"""``make soak``: many valid uploads at a steady rate through the whole stack, and what the
gateway process looks like after them.

    python -m serving.soak [--uploads 500] [--per-minute 40] [--out var/soak]

Starts ``python -m serving`` on ports of its own with the proof of work on (every upload
solves a challenge, as the public page does) and the per-client limits off (every upload
comes from this one address), with a private, empty TMPDIR. Sends watermarked 0.3 MP JPEGs
(small, so that the model's CPU time does not crowd out the gateway being watched) on a fixed
schedule, a few at a time, and prints one JSON document: statuses, 5xx, the gateway's resident
memory and open file descriptors after a warm-up and at the end, and what appeared on disk
(files in TMPDIR, regular files the gateway holds open besides its log, new files in its working
folder). Exits 1 when a target is missed: any 5xx, memory growth of 10% or more,
more descriptors at the end than after the warm-up (plus the sockets that uploads in flight and
the connection pool may hold), or anything new on disk.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path

import psutil

from bench.images import watermarked_jpeg
from serving.client import post_image
from serving.stack import exit_status, start_stack, stop_stack, wait_until_ready
from serving.torchserve import PORT_KEYS, REPO

WARM_UP = 10
MAX_RSS_GROWTH = 0.10
CONCURRENCY = 4
# Sockets that may legitimately be open at the end and not after the warm-up: one pooled
# keep-alive connection to TorchServe and one client connection per upload in flight. A leak
# grows with the number of uploads, so a 500-upload soak (or the suite's 24) still shows it.
FD_ALLOWANCE = 2 * CONCURRENCY
SETTLE_S = 5.0
# Ports of its own, so that a `make run` on the default ports is left alone: the gateway's,
# then TorchServe's in the order of PORT_KEYS.
PORTS = tuple(range(18300, 18300 + 1 + len(PORT_KEYS)))


@dataclass(frozen=True)
class Snapshot:
    rss_mib: float
    open_fds: int


@dataclass(frozen=True)
class SoakReport:
    uploads: int
    per_minute: float
    seconds: float
    statuses: dict[str, int]
    server_errors: int
    after_warm_up: Snapshot
    at_end: Snapshot
    rss_growth: float
    files_in_tmpdir: list[str]
    files_held_open: list[str]
    new_files_in_working_dir: list[str]

    def problems(self) -> list[str]:
        found = []
        if self.server_errors:
            found.append(f"{self.server_errors} answers were 5xx")
        if self.rss_growth >= MAX_RSS_GROWTH:
            found.append(f"the gateway's memory grew {self.rss_growth:.1%}")
        if self.at_end.open_fds > self.after_warm_up.open_fds + FD_ALLOWANCE:
            found.append(
                f"the gateway holds {self.at_end.open_fds} file descriptors, more than "
                f"{self.after_warm_up.open_fds} after the warm-up + {FD_ALLOWANCE} sockets"
            )
        if self.files_in_tmpdir or self.files_held_open or self.new_files_in_working_dir:
            found.append("something new is on disk")
        return found


def snapshot(gateway: psutil.Process) -> Snapshot:
    return Snapshot(round(gateway.memory_info().rss / 2**20, 1), gateway.num_fds())


def settled_snapshot(gateway: psutil.Process, ceiling: int) -> Snapshot:
    """A snapshot once the descriptor count is at most ``ceiling`` or ``SETTLE_S`` has passed:
    connections of the last uploads are still being closed when the last answer arrives."""
    deadline = time.monotonic() + SETTLE_S
    while (shot := snapshot(gateway)).open_fds > ceiling and time.monotonic() < deadline:
        time.sleep(0.2)
    return shot


def find_gateway(stack: subprocess.Popen[bytes]) -> psutil.Process:
    """The `python -m gateway` child of the launcher."""
    for child in psutil.Process(stack.pid).children(recursive=True):
        if child.cmdline()[1:3] == ["-m", "gateway"]:
            return child
    raise RuntimeError("the launcher has no `python -m gateway` child")


def working_dir_files() -> set[str]:
    """The files where a relative path opened by the gateway would land: the top of the
    repository (its working folder) and the gateway's package."""
    top = {str(path) for path in REPO.iterdir() if path.is_file()}
    return top | {str(path) for path in (REPO / "gateway").rglob("*") if path.is_file()}


def soak(
    host: str, uploads: int, per_minute: float, gateway: psutil.Process, tmpdir: Path, log: Path
) -> SoakReport:
    """Send ``uploads`` JPEGs at ``per_minute`` (each solving its proof of work) and report."""
    photos = [watermarked_jpeg(640, 480, style, seed) for seed, style in enumerate(
        ("corner", "text", "logo", "grid", "centre"))]  # fmt: skip
    files_before = working_dir_files()
    interval_s = 60 / per_minute
    statuses: Counter[int] = Counter()
    after_warm_up = snapshot(gateway)

    def send(n: int) -> int:
        delay = start + n * interval_s - time.monotonic()
        if delay > 0:
            time.sleep(delay)
        answer = post_image(host, "/api/v1/remove", photos[n % len(photos)], "image/jpeg",
                            attempts=1)  # fmt: skip
        return answer.status

    start = time.monotonic()
    with ThreadPoolExecutor(max_workers=CONCURRENCY) as pool:
        for n, status in enumerate(pool.map(send, range(uploads))):
            statuses[status] += 1
            if n + 1 == WARM_UP:
                after_warm_up = snapshot(gateway)
    seconds = time.monotonic() - start
    at_end = settled_snapshot(gateway, after_warm_up.open_fds)
    held = [f.path for f in gateway.open_files() if Path(f.path) != log]
    return SoakReport(
        uploads=uploads,
        per_minute=per_minute,
        seconds=round(seconds, 1),
        statuses={str(status): count for status, count in sorted(statuses.items())},
        server_errors=sum(count for status, count in statuses.items() if status >= 500),
        after_warm_up=after_warm_up,
        at_end=at_end,
        rss_growth=round(at_end.rss_mib / after_warm_up.rss_mib - 1, 4),
        files_in_tmpdir=sorted(str(path) for path in tmpdir.rglob("*")),
        files_held_open=held,
        new_files_in_working_dir=sorted(working_dir_files() - files_before),
    )


def run(
    uploads: int,
    per_minute: float,
    out: Path,
    model_store: Path = REPO / "model_store",
    ports: tuple[int, ...] = PORTS,
) -> int:
    """Start the stack on ports, soak it, stop it; write <out>/soak.json; the exit status."""
    out.mkdir(parents=True, exist_ok=True)
    tmpdir = out / "tmp"
    tmpdir.mkdir(exist_ok=True)
    log = (out / "serving.log").resolve()
    host = f"http://127.0.0.1:{ports[0]}"
    env = {
        **{f"TORCHSERVE_{name.upper()}_PORT": str(port)
           for name, port in zip(PORT_KEYS, ports[1:], strict=True)},
        "GATEWAY_PROOF_OF_WORK": "on",
        "GATEWAY_RATE_LIMIT_PER_MINUTE": "0",
        "TMPDIR": str(tmpdir.resolve()),
    }  # fmt: skip
    print(f"starting the stack (proof of work on, per-client limits off; log: {log}) ...",
          flush=True)  # fmt: skip
    options = ["--model-store", str(model_store), "--run-dir", str(out / "run")]
    stack = start_stack(host, log, env, options)
    try:
        wait_until_ready(host, stack, log)
        print(f"soak: {uploads} uploads at {per_minute:g} a minute ...", flush=True)
        report = soak(host, uploads, per_minute, find_gateway(stack), tmpdir, log)
    finally:
        stop_stack(stack)
    document = {**asdict(report), "problems": report.problems()}
    (out / "soak.json").write_text(json.dumps(document, indent=2) + "\n")
    print(json.dumps(document, indent=2))
    return 1 if report.problems() else 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--uploads", type=int, default=500)
    parser.add_argument("--per-minute", type=float, default=40)
    parser.add_argument("--out", type=Path, default=REPO / "var" / "soak")
    args = parser.parse_args(argv)
    return exit_status(lambda: run(args.uploads, args.per_minute, args.out))


if __name__ == "__main__":
    sys.exit(main())
