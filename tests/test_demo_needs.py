"""`askdesk demo`'s needs-survey part against its own simulator and app: the round, the report with a
theme in each language, an action recorded and done, "we did" DMs, and the scorecard."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from bot.demo import run as demo_run
from bot.demo.needs import needs_scenario


def play(tmp_path: Path, part: Callable[[demo_run.Demo], None]) -> str:
    """One part of the demo's script against a started demo; what it printed."""
    lines: list[str] = []
    demo = demo_run.Demo(tmp_path, lines.append)
    demo.start()
    try:
        part(demo)
    finally:
        demo.stop()
    return "\n".join(lines)


def test_the_demo_runs_a_needs_round_to_the_scorecard(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    built_in = demo_run.demo_config

    def shorter() -> dict[str, Any]:  # the built-in 15 s round, shortened for the test
        config = built_in()
        config["teams"][0]["needs_window"] = "8s"
        return config

    monkeypatch.setattr(demo_run, "demo_config", shorter)
    out = play(tmp_path, needs_scenario)
    assert "7 of 7 people answered (100%)" in out
    assert "*1. expense report* — 3 people" in out and "*2. 报销* — 3 people" in out
    assert "“报销审批不透明”" in out  # a quote, anonymised, in the printed report too
    # one per person surveyed, in their language: Li and Hannah read Chinese
    assert out.count("You said, we did — Finance") == 5 and out.count("你们提的，我们做了——Finance") == 2
    assert "Improvement action* · Done" in out
    assert "Internal satisfaction scorecard" in out and "Finance: index" in out and "1 done, 0 open" in out
    assert "✗" not in out


def test_the_demo_request_loop_runs_through(tmp_path: Path) -> None:
    """Its first part: the form is sent with the (sealed) metadata of the modal askdesk opened, so Priya's
    request is created and the rest of the loop (claims, resolve, transfer, reopen, shortcut) follows."""
    from bot.demo.scenario import request_loop

    out = play(tmp_path, request_loop)
    assert "#3 · VPN keeps disconnecting" in out and "did not seal" not in out
    assert "━━ 5." in out
