"""What `askdesk` commands share besides their settings (bot.cli.command_settings): one-line errors."""

from __future__ import annotations

import argparse


def positive_int(text: str) -> int:
    """argparse type: a whole number of at least 1."""
    if not text.isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"expected a whole number >= 1, got {text!r}")
    return int(text)


class CliError(Exception):
    """A problem the person running askdesk can fix; printed as one line on stderr (exit code 1)."""
