"""Importing this module registers every job handler and periodic task."""

from bot.services import messages  # noqa: F401
