"""The Slack fake for bench_ack, in a process of its own (the default) or in the benchmark's.

Real Slack does its work on Slack's machines. Here the fake shares the 2 cores with the app under
test; in its own process it at least does not share the load generator's GIL, so neither can
throttle the other (and a benchmark whose harness saturates measures the harness).

    python -m bench.slack_fake --latency 0.2 --users 5000

prints one JSON line (`base_url`, `root_url`, `pid`), then answers one JSON line for each command
line on stdin: `reset`, `count METHOD`, `posts TAG CHANNEL` (see `triage_posts`), `quit`.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from collections.abc import Iterable
from typing import Any

from bench.common import ROOT
from slacksim.simulator import Call, SlackSimulator

CHANNEL = "C0FINANCE"


def build_world(latency: float, users: int) -> SlackSimulator:
    """The benchmark's workspace: the Finance triage channel and `users` requesters (not started)."""
    sim = SlackSimulator(latency=latency)
    sim.add_channel(CHANNEL, name="finance", members=["UBOT", "U0RESP"])
    for i in range(users):
        sim.add_user(f"U0B{i:05d}", name=f"user{i}")
    sim.add_user("U0RESP", name="resp")
    return sim


def triage_posts(calls: Iterable[Call], tag: str, channel: str = CHANNEL) -> dict[int, float]:
    """{request number: when its triage post arrived} for the posts to `channel` whose text carries
    `<tag>-<number>` (the load generator's marker)."""
    posts: dict[int, float] = {}
    for call in calls:
        if call.args.get("channel") != channel:
            continue
        text = str(call.args.get("text", ""))
        marker = text.find(f"{tag}-")
        if marker >= 0:
            num = text[marker + len(tag) + 1:].split()[0]
            if num.isdigit():
                posts.setdefault(int(num), call.at)
    return posts


class LocalFake:
    """The fake in the benchmark's own process (`--fake-in-process`: the setup before it had its own)."""

    def __init__(self, latency: float, users: int) -> None:
        self.sim = build_world(latency, users).start()
        self.world = self.sim  # what the driver reads trigger ids, users and channel names from
        self.base_url = self.sim.base_url
        self.pid = os.getpid()

    def reset(self) -> None:
        self.sim.reset_calls()

    def count(self, method: str) -> int:
        return len(self.sim.calls_to(method))

    def posts(self, tag: str, channel: str = CHANNEL) -> dict[int, float]:
        return triage_posts(self.sim.calls_to("chat.postMessage"), tag, channel)

    def stop(self) -> None:
        self.sim.stop()


class RemoteFake:
    """The fake in a child process, driven over its stdin/stdout. `world` is a local, unstarted copy
    of its workspace for the driver (users, channel names, trigger ids); the times it reports are
    `time.monotonic()` of the child, the same clock as ours on Linux."""

    def __init__(self, latency: float, users: int) -> None:
        self.proc = subprocess.Popen([sys.executable, "-m", "bench.slack_fake", "--latency", str(latency),
                                      "--users", str(users)], cwd=ROOT, stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, text=True, bufsize=1)
        info = self._read()
        self.base_url, self.pid = info["base_url"], info["pid"]
        self.world = build_world(latency, users)
        self.world.root_url = info["root_url"]
        self.world.base_url = self.base_url

    def _read(self) -> Any:
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        if not line:
            raise RuntimeError(f"the Slack fake exited ({self.proc.wait()})")
        return json.loads(line)

    def _ask(self, *words: str) -> Any:
        assert self.proc.stdin is not None
        self.proc.stdin.write(" ".join(words) + "\n")
        return self._read()

    def reset(self) -> None:
        self._ask("reset")

    def count(self, method: str) -> int:
        return int(self._ask("count", method))

    def posts(self, tag: str, channel: str = CHANNEL) -> dict[int, float]:
        return {int(k): v for k, v in self._ask("posts", tag, channel).items()}

    def stop(self) -> None:
        if self.proc.poll() is None:
            try:
                self._ask("quit")
            except (OSError, RuntimeError, ValueError):
                pass
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()


def serve(latency: float, users: int) -> None:
    """The child's side of `RemoteFake`: a `LocalFake` here, its methods answered over stdin/stdout."""
    fake = LocalFake(latency, users)
    print(json.dumps({"base_url": fake.base_url, "root_url": fake.sim.root_url, "pid": fake.pid}), flush=True)
    answers: dict[str, Any] = {"reset": fake.reset, "count": fake.count, "posts": fake.posts}
    try:
        for line in sys.stdin:
            command, *words = line.split()
            if command == "quit":
                print("null", flush=True)
                break
            print(json.dumps(answers[command](*words)), flush=True)
    finally:
        fake.stop()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--latency", type=float, default=0.2)
    parser.add_argument("--users", type=int, default=5000)
    args = parser.parse_args()
    serve(args.latency, args.users)


if __name__ == "__main__":
    main()
