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
    ASSIGN = "req_assign"
    ASK_REQUESTER = "req_ask_requester"
    REPLY = "req_reply"
    AVAILABLE = "home_available"
    AWAY = "home_away"
    SURVEY_SCORE = "survey_score"  # action ids survey_score_1 .. survey_score_5
    SURVEY_MORE = "survey_more"
    NEEDS_SCORE = "needs_score"  # action ids needs_score_1 .. needs_score_5
    NEEDS_MORE = "needs_more"
    NEEDS_ACTION_NEW = "needs_action_new"
    NEEDS_ACTION_PROGRESS = "needs_action_progress"
    NEEDS_ACTION_DONE = "needs_action_done"


class Callback(StrEnum):
    REQUEST_MODAL = "ask_request"
    TRANSFER_MODAL = "ask_transfer"
    SURVEY_MODAL = "survey_more"
    SHORTCUT = "ask_about_message"
    FULL_TEXT_MODAL = "req_full_text"
    NEEDS_MODAL = "needs_survey"
    NEEDS_ACTION_MODAL = "needs_action"
    NEEDS_DONE_MODAL = "needs_action_done"
    ASSIGN_MODAL = "req_assign"
    ASK_MODAL = "req_ask_requester"
    REPLY_MODAL = "req_reply"
    NOTICE_MODAL = "req_notice"


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
    NEEDS_SCORE = "needs"  # needs_overall, needs_communication, ...
    NEEDS_OBSTACLE = "needs_obstacle"
    NEEDS_START_STOP = "needs_start_stop"
    NEEDS_SHARE = "needs_share"
    ACTION_THEME = "action_theme"
    ACTION_TITLE = "action_title"
    ACTION_DETAIL = "action_detail"
    ACTION_OWNER = "action_owner"
    ACTION_DUE = "action_due"
    ASSIGNEE = "assignee"
    QUESTION = "question"
    ANSWER = "answer"


INPUT = "value"  # the action id of every modal input element
