"""A Ray cluster of several nodes on one machine (for the two-node test and ``bench/sweep.py``), and the
loopback-only network namespace every Ray start on our machines needs.

Why the namespace: Ray listens on the machine's network address, even when told 127.0.0.1, and our machines may
send traffic only to loopback or inside namespaces we create. Inside ``unshare -n`` (with ``lo`` up) Ray finds no
route, falls back to 127.0.0.1, and no packet leaves (see ``shared/docs/ray-notes.md``). Creating the namespace
needs root (CI and our machines run as root).

:class:`LocalCluster` starts a head (``ray start --head --block``) and worker nodes (``ray start --address ...
--block``), each with its own ``--num-cpus``, with ``RAY_AUTH_MODE=disabled`` (otherwise the second start fails
with ``InvalidAuthToken``) and a private ``RAY_TMPDIR`` (so ``--address auto`` finds this cluster and no other).
It stops them by their own process ids (SIGTERM: a blocking ``ray start`` then ends its node's processes), never
with ``ray stop``, which ends every Ray process on the machine.
"""
from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

READY = "Ray runtime started."


def loopback_only() -> bool:
    """True inside a network namespace whose only interface is the loopback (``unshare -n``)."""
    try:  # the interfaces of this process's network namespace (/sys/class/net shows the mount's, not ours)
        return [name for _, name in socket.if_nameindex()] == ["lo"]
    except OSError:
        return False


def in_loopback_namespace(cmd: list[str]) -> list[str]:
    """``cmd`` wrapped to run in a new loopback-only network namespace (``unshare -n``, then ``lo`` up)."""
    return ["unshare", "-n", "bash", "-c", 'ip link set lo up && exec "$@"', "bash", *cmd]


def can_unshare() -> bool:
    """Whether this process may create a network namespace (root, and unshare/ip installed)."""
    if not (shutil.which("unshare") and shutil.which("ip")):
        return False
    r = subprocess.run(in_loopback_namespace(["true"]), capture_output=True)
    return r.returncode == 0


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class LocalCluster:
    """``with LocalCluster(cpus=(1, 1)) as c:`` a head with 1 CPU and one worker node with 1 CPU; ``c.env`` is the
    environment under which ``--address auto`` (or ``ray.init(address="auto")``) joins it."""

    def __init__(self, cpus: tuple[int, ...] = (1, 1), timeout_s: float = 120.0):
        if not loopback_only():
            raise RuntimeError("refusing to start Ray outside a loopback-only network namespace (run under "
                               "`unshare -n`; see core.sweep.cluster)")
        self.cpus, self.timeout_s = cpus, timeout_s
        self.tmp = Path(tempfile.mkdtemp(prefix="alva-ray-", dir="/tmp"))
        self.port = _free_port()
        self.address = f"127.0.0.1:{self.port}"
        self.env = {**os.environ, "RAY_TMPDIR": str(self.tmp), "RAY_AUTH_MODE": "disabled",
                    "RAY_USAGE_STATS_ENABLED": "0", "RAY_GRACEFUL_SHUTDOWN_DRAIN_TIMEOUT_S": "0"}
        self.env.pop("RAY_ADDRESS", None)
        self.procs: list[subprocess.Popen] = []
        self._below: set[int] = set()
        self.start_s = 0.0

    @property
    def pids(self) -> list[int]:
        return [p.pid for p in self.procs]

    def _start(self, args: list[str], log: Path) -> None:
        ray = str(Path(sys.executable).with_name("ray"))
        with open(log, "w") as f:
            p = subprocess.Popen([ray, "start", "--block", *args], stdout=f, stderr=subprocess.STDOUT, env=self.env,
                                 stdin=subprocess.DEVNULL)
        self.procs.append(p)
        deadline = time.monotonic() + self.timeout_s
        while READY not in log.read_text():
            if p.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"`ray start {' '.join(args)}` did not start:\n{log.read_text()[-3000:]}")
            time.sleep(0.2)

    def __enter__(self) -> "LocalCluster":
        t0 = time.perf_counter()
        try:
            self._start(["--head", "--num-cpus", str(self.cpus[0]), "--port", str(self.port),
                         "--include-dashboard", "false"], self.tmp / "head.log")
            for i, n in enumerate(self.cpus[1:]):
                self._start(["--address", self.address, "--num-cpus", str(n)], self.tmp / f"node{i + 1}.log")
        except BaseException:
            self.stop()
            raise
        self.start_s = time.perf_counter() - t0
        return self

    def __exit__(self, *exc) -> None:
        self.stop()

    def descendants(self) -> set[int]:
        """The pids of every process below the ``ray start`` processes we started (their node's processes)."""
        parent: dict[int, int] = {}
        for d in Path("/proc").iterdir():
            if d.name.isdigit():
                try:
                    parent[int(d.name)] = int((d / "stat").read_text().rsplit(")", 1)[1].split()[1])
                except (OSError, ValueError, IndexError):
                    pass
        found, frontier = set(), set(self.pids)
        while frontier:
            frontier = {pid for pid, pp in parent.items() if pp in frontier} - found
            found |= frontier
        return found

    def leftover_pids(self) -> list[int]:
        """Processes still running that belong to this cluster: below our ``ray start`` processes when stopping
        began, or naming this cluster's temp dir on their command line."""
        mine, out = str(self.tmp), []
        for d in Path("/proc").iterdir():
            if d.name.isdigit():
                try:
                    cmd = (d / "cmdline").read_bytes().decode(errors="replace")
                except OSError:
                    continue
                if mine in cmd or (int(d.name) in self._below and cmd):
                    out.append(int(d.name))
        return out

    def stop(self) -> list[int]:
        """SIGTERM each ``ray start`` we started (workers first), by pid; SIGKILL what is left of them and of
        their node's processes after a grace period. Returns the pids that had to be killed."""
        self._below = self.descendants()
        for p in reversed(self.procs):
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
        for p in reversed(self.procs):
            try:
                p.wait(timeout=30)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
        killed = []
        deadline = time.monotonic() + 10
        while self.leftover_pids() and time.monotonic() < deadline:
            time.sleep(0.2)
        for pid in self.leftover_pids():
            try:
                os.kill(pid, signal.SIGKILL)
                killed.append(pid)
            except ProcessLookupError:
                pass
        shutil.rmtree(self.tmp, ignore_errors=True)
        return killed
