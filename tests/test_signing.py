"""The driver signs exactly like Slack: checked against Slack's documented known-answer vector."""

from __future__ import annotations

import json
from pathlib import Path

from slack_sdk.signature import SignatureVerifier

from slacksim.driver import SlackDriver

VECTOR = json.loads((Path(__file__).parent / "fixtures" / "signing.test-vector.docs.json").read_text())


def test_driver_signature_matches_slacks_vector() -> None:
    driver = SlackDriver("http://127.0.0.1:9/slack/events", VECTOR["signing_secret"])
    headers = driver.sign(VECTOR["raw_body"].encode(), timestamp=int(VECTOR["x_slack_request_timestamp"]))
    assert headers["X-Slack-Signature"] == VECTOR["x_slack_signature"]
    verifier = SignatureVerifier(VECTOR["signing_secret"], clock=_Frozen(int(VECTOR["x_slack_request_timestamp"])))
    assert verifier.is_valid(VECTOR["raw_body"], VECTOR["x_slack_request_timestamp"], VECTOR["x_slack_signature"])


class _Frozen:
    def __init__(self, now: int) -> None:
        self._now = now

    def now(self) -> float:
        return float(self._now)
