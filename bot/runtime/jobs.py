"""Importing this module registers every job handler and periodic task."""

import bot.services.digest_jobs  # noqa: F401  (weekly digests: schedule + post)
import bot.services.surveys  # noqa: F401  (survey plan/send/render jobs, expiry)
from bot.services import messages  # noqa: F401
