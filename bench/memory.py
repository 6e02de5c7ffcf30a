"""Peak memory of TorchServe's Python workers, from Linux's /proc.

VmHWM is a process's peak resident set since it started: read after the largest input, it is
the most memory the worker ever held, model and every request included.
"""

from __future__ import annotations

from pathlib import Path

PROC = Path("/proc")
# TorchServe's Java frontend starts each worker as `python .../ts/model_service_worker.py ...`.
WORKER_MARK = "model_service_worker"
GIB = 1024**3


def descendants(parents: dict[int, int], root: int) -> set[int]:
    """Every process below ``root`` in the tree given as {pid: parent pid}."""
    children: dict[int, list[int]] = {}
    for pid, parent in parents.items():
        children.setdefault(parent, []).append(pid)
    found: set[int] = set()
    stack = [root]
    while stack:
        for child in children.get(stack.pop(), []):
            if child not in found:
                found.add(child)
                stack.append(child)
    return found


def vm_hwm_bytes(status: str) -> int:
    """The VmHWM line of a /proc/<pid>/status text ("VmHWM:   123456 kB"), in bytes."""
    for line in status.splitlines():
        if line.startswith("VmHWM:"):
            value, unit = line.split()[1:3]
            if unit != "kB":
                raise ValueError(f"unexpected VmHWM unit: {line!r}")
            return int(value) * 1024
    raise ValueError("no VmHWM line (a kernel thread, or not Linux)")


def _read(path: Path) -> str:
    try:
        return path.read_text()
    except OSError:  # the process ended between listing and reading
        return ""


def _parent_pid(stat: str) -> int:
    # /proc/<pid>/stat: "pid (command) state ppid ..."; the command may hold spaces and ")".
    return int(stat.rsplit(")", 1)[1].split()[1])


def worker_peaks(root: int) -> dict[int, int]:
    """{pid: VmHWM bytes} of the TorchServe workers among the descendants of ``root``."""
    parents = {}
    for entry in PROC.iterdir():
        if entry.name.isdigit() and (stat := _read(entry / "stat")):
            parents[int(entry.name)] = _parent_pid(stat)
    peaks = {}
    for pid in sorted(descendants(parents, root)):
        command = _read(PROC / str(pid) / "cmdline").replace("\0", " ")
        status = _read(PROC / str(pid) / "status")
        if WORKER_MARK in command and status:
            peaks[pid] = vm_hwm_bytes(status)
    return peaks
