"""Slack ids (action ids, callback ids, block ids) in one place, shared by builders and handlers."""

from enum import StrEnum


class Action(StrEnum):
    CLAIM = "req_claim"
    RESOLVE = "req_resolve"
    REOPEN = "req_reopen"
    TRANSFER = "req_transfer"
    FULL_TEXT = "req_full_text"
    RETRY_POST = "req_retry_post"
    HOME_REFRESH = "home_refresh"
    SURVEY_SCORE = "survey_score"  # action ids survey_score_1 .. survey_score_5
    SURVEY_MORE = "survey_more"


class Callback(StrEnum):
    REQUEST_MODAL = "ask_request"
    TRANSFER_MODAL = "ask_transfer"
    SURVEY_MODAL = "survey_more"
    SHORTCUT = "ask_about_message"
    FULL_TEXT_MODAL = "req_full_text"


class Block(StrEnum):
    SUMMARY = "summary"
    DETAILS = "details"
    CATEGORY = "category"
    URGENCY = "urgency"
    TEAM = "team"
    TRANSFER_TEAM = "transfer_team"
    TRANSFER_NOTE = "transfer_note"
    DIMENSION = "dim"  # dim_responsiveness, ...
    COMMENT = "comment"
    ANONYMOUS = "anonymous"
    OVERALL = "overall"  # the overall 1-5 score in the survey modal


INPUT = "value"  # the action id of every modal input element
