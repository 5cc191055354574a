"""`askdesk demo`: the real app against a local Slack simulator, driven by signed requests.

No Slack account needed: a fresh SQLite file, a built-in config, the real Bolt app under the real
HTTP server, the real scheduler — and a transcript of what each person would have seen in Slack.
"""

from __future__ import annotations

import threading
import time
import tomllib
from collections.abc import Callable
from importlib import resources
from pathlib import Path
from typing import Any

from bot.config import Settings, parse_config
from bot.demo.transcript import Namer, describe_call, describe_response_post
from slacksim.driver import SlackDriver
from slacksim.simulator import SlackSimulator

SIGNING_SECRET = "demo-signing-secret"
PEOPLE = {
    "U0DAVE": ("dave", "America/Los_Angeles", "Sales"), "U0PRIYA": ("priya", "Europe/London", "Marketing"),
    "U0LI": ("li.wei", "Asia/Shanghai", "Engineering"), "U0ALICE": ("alice", "Europe/Berlin", None),
    "U0BOB": ("bob", "America/New_York", None), "U0CAROL": ("carol", "Europe/Berlin", None),
    "U0HANNAH": ("hannah", "Europe/Berlin", None), "U0MALLORY": ("mallory", "Europe/Berlin", "Marketing"),
    "U0ADMIN": ("ops-admin", "Europe/Berlin", None),
}
LOCALES = {"U0LI": "zh-CN", "U0HANNAH": "zh-CN"}  # Slack set to Chinese; everyone else en-US
CHANNELS = {
    "C0FINANCE": ("finance-triage", ["U0ALICE", "U0BOB"]), "C0IT": ("it-help", ["U0CAROL"]),
    "C0PEOPLE": ("people-desk", ["U0HANNAH", "U0ADMIN"]),
    "C0GENERAL": ("general", list(PEOPLE)), "C0LEADERS": ("leadership", ["U0ADMIN"]),
}


def demo_config() -> dict[str, Any]:
    return tomllib.loads(resources.files("bot.demo").joinpath("demo_config.toml").read_text(encoding="utf-8"))


class Demo:
    """Runs the scenario and prints the transcript as it goes."""

    def __init__(self, out_dir: Path, printer: Callable[[str], None] = print) -> None:
        self.out_dir, self.print = out_dir, printer
        self.sim = SlackSimulator()
        for uid, (name, tz, dept) in PEOPLE.items():
            self.sim.add_user(uid, name=name, tz=tz, profile_fields={"Department": dept} if dept else None,
                              locale=LOCALES.get(uid, "en-US"))
        for cid, (name, members) in CHANNELS.items():
            self.sim.add_channel(cid, name=name, members=[*members, "UBOT"])
        self.namer = Namer({u: p[0] for u, p in PEOPLE.items()}, {c: v[0] for c, v in CHANNELS.items()})
        for uid, (name, _tz, _dept) in PEOPLE.items():
            self.namer.dms[self.sim.dm_channel_for(uid)] = name
        self._seen_calls = 0
        self._seen_posts = 0

    # -- plumbing ---------------------------------------------------------------------------
    def start(self) -> None:
        from bot.app import boot
        from bot.runtime.database import open_database
        from bot.runtime.server import create_server

        self.sim.start()
        db = self.out_dir / "demo.db"
        self.settings = Settings(
            bot_token="xoxb-demo", signing_secret=SIGNING_SECRET, slack_api_url=self.sim.base_url,
            database_url=f"sqlite:///{db}", listener_threads=8, http_threads=8,
            **parse_config("demo_config.toml (built in)", demo_config()))
        self.deps, self.app, self.clock = boot(self.settings, open_database(self.settings, migrate=True))
        self.server = create_server(self.app, self.deps.engine, host="127.0.0.1", port=0, threads=8)
        threading.Thread(target=self.server.run, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.server.effective_port}/slack/events"
        self.driver = SlackDriver(self.url, SIGNING_SECRET, self.sim)
        self.clock.start()

    def stop(self) -> None:
        from bot.app import drain

        self.server.close()
        drain(self.deps, self.app, self.clock)
        self.sim.stop()

    def settle(self, quiet: float = 0.35, timeout: float = 15.0) -> None:
        """Wait until the app has stopped calling Slack for a moment (demo pacing, not a test)."""
        deadline, last, last_change = time.monotonic() + timeout, -1, time.monotonic()
        while time.monotonic() < deadline:
            count = len(self.sim.calls) + len(self.sim.response_posts)
            if count != last:
                last, last_change = count, time.monotonic()
            elif time.monotonic() - last_change >= quiet:
                return
            time.sleep(0.05)

    def show(self) -> None:
        self.settle()
        calls = self.sim.calls
        for call in calls[self._seen_calls:]:
            if call.ok:
                entry = describe_call(call.method, call.args, call.response, self.namer)
                if entry:
                    self.print(entry)
        self._seen_calls = len(calls)
        posts = self.sim.response_posts
        for post in posts[self._seen_posts:]:
            self.print(describe_response_post(post.body, post.user_id or "", self.namer))
        self._seen_posts = len(posts)

    def step(self, who: str, what: str) -> None:
        self.print(f"\n▶ {self.namer.user(who)} {what}")

    def ack_text(self, resp: Any) -> None:
        if resp.status != 200:
            self.print(f"  ✗ HTTP {resp.status}")
        elif resp.body:
            body = resp.json if isinstance(resp.json, dict) else {"text": resp.body}
            if body.get("text") or body.get("blocks"):
                self.print(describe_response_post(body, "", self.namer).replace("@ (", "(", 1))

    # -- actions ----------------------------------------------------------------------------
    def slash(self, user: str, command: str, text: str) -> None:
        self.step(user, f"types `{command} {text}`".rstrip())
        self.ack_text(self.driver.slash(command, text, user_id=user, channel_id="C0GENERAL"))
        self.show()

    def click(self, user: str, action: str, request_id: int, *, where: str = "triage", label: str = "") -> None:
        from bot.services.requests import get_request

        req = get_request(self.deps, request_id)
        assert req is not None
        channel, ts = (req.triage_channel, req.triage_ts) if where == "triage" else (req.dm_channel, req.dm_ts)
        place = self.namer.channel(channel or "") if where == "triage" else "their DM"
        self.step(user, f"clicks [{label or action}] on #{request_id} in {place}")
        self.driver.block_action(user_id=user, action_id=action, value=str(request_id), channel_id=channel,
                                 message_ts=ts)
        self.show()
