"""What `askdesk` commands share besides their settings (bot.cli.command_settings): one-line errors."""

from __future__ import annotations


class CliError(Exception):
    """A problem the person running askdesk can fix; printed as one line on stderr (exit code 1)."""
