"""Shared helpers for benchmarks: free ports, subprocess apps, RSS, percentiles."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# The one team the benchmarks' askdesk processes serve (C0FINANCE in the simulator).
FINANCE_TOML = """
[workspace]
timezone = "UTC"
[[teams]]
slug = "finance"
name = "Finance"
channel = "C0FINANCE"
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def wait_http(url: str, timeout: float = 30.0) -> float:
    start = time.monotonic()
    while time.monotonic() - start < timeout:
        try:
            with urllib.request.urlopen(url, timeout=1) as resp:
                if resp.status == 200:
                    return time.monotonic() - start
        except OSError:
            time.sleep(0.02)
    raise TimeoutError(f"{url} not up after {timeout}s")


def spawn(args: list[str], env: dict[str, str] | None = None, log: Path | None = None) -> subprocess.Popen:
    full_env = {**os.environ, "PYTHONPATH": str(ROOT), **(env or {})}
    out = open(log, "w") if log else subprocess.DEVNULL  # noqa: SIM115
    return subprocess.Popen([sys.executable, *args], env=full_env, cwd=ROOT, stdout=out, stderr=subprocess.STDOUT,
                            start_new_session=True)  # its own process group: stop() ends worker children too


def stop(proc: subprocess.Popen, timeout: float = 30) -> None:
    """SIGTERM the process group (an app and any forked workers) and wait for the leader."""
    import signal

    try:
        os.killpg(proc.pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    proc.wait(timeout=timeout)


def pct(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    k = (len(ordered) - 1) * q / 100
    lo, hi = int(k), min(int(k) + 1, len(ordered) - 1)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (k - lo)


def write_result(name: str, markdown: str, data: dict) -> Path:
    docs = ROOT / "docs"
    docs.mkdir(exist_ok=True)
    (docs / f"{name}.json").write_text(json.dumps(data, indent=2))
    path = docs / f"{name}.md"
    path.write_text(markdown)
    return path
