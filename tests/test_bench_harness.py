"""The benchmark's Slack fake in a process of its own (bench/slack_fake.py) answers the app's calls and
reports the triage posts the way bench_ack reads them; the in-process variant reports the same."""

from __future__ import annotations

import time

import pytest

from bench.slack_fake import CHANNEL, LocalFake, RemoteFake
from bot.slack.client import build_client
from slacksim.driver import SlackDriver


@pytest.mark.parametrize("kind", [RemoteFake, LocalFake])
def test_fake_counts_triage_posts_by_tag(kind: type[RemoteFake] | type[LocalFake]) -> None:
    fake = kind(0.0, 3)
    try:
        client = build_client("xoxb-bench", fake.base_url)
        before = time.monotonic()
        for text, channel in (("run0-7 where is my refund?", CHANNEL), ("run0-8 again", CHANNEL),
                              ("run0-9 a DM", "U0B00001"), ("warm-1 warm-up", CHANNEL)):
            client.chat_postMessage(channel=channel, text=text)
        after = time.monotonic()
        posts = fake.posts("run0")
        assert sorted(posts) == [7, 8]  # the DM and the other tag are not triage posts of this round
        assert all(before <= at <= after for at in posts.values())  # the child's clock is ours
        assert fake.count("chat.postMessage") == 4
        with pytest.raises(Exception, match="channel_not_found"):
            client.chat_postMessage(channel="C0NOPE", text="x")  # it is the real simulator
        fake.reset()
        assert fake.count("chat.postMessage") == 0 and fake.posts("run0") == {}
        # the load generator builds its requests from (a copy of) the fake's workspace, whose
        # response URLs point at the fake
        assert "U0B00002" in fake.world.users and fake.base_url.startswith(fake.world.root_url)
        assert SlackDriver("http://127.0.0.1:9/", "s", fake.world)._response_url(
            "commands", "U0B00002", CHANNEL).startswith(fake.world.root_url)
    finally:
        fake.stop()
    if isinstance(fake, RemoteFake):
        assert fake.proc.poll() == 0
