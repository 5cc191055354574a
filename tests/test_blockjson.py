"""bot.render.blockjson.to_json_ready against slack_sdk's own to_dict (the conftest fixture also compares
the two for every message rendered anywhere in the suite)."""

from __future__ import annotations

import pytest
from slack_sdk.errors import SlackObjectFormationError
from slack_sdk.models.blocks import (
    ActionsBlock,
    ButtonElement,
    ConfirmObject,
    ContextBlock,
    InputBlock,
    MarkdownTextObject,
    Option,
    PlainTextObject,
    RichTextBlock,
    RichTextSectionElement,
    SectionBlock,
    StaticSelectElement,
)

from bot.render.blockjson import to_json_ready


def test_objects_with_their_own_to_dict_and_empty_allowed_lists() -> None:
    select = StaticSelectElement(action_id="pick", placeholder=PlainTextObject(text="Pick"),
                                 options=[Option(value="a", text="A"), Option(value="b", label="B")],
                                 initial_option=Option(value="a", text="A"))
    blocks = [
        InputBlock(label="Team", element=select, block_id="team"),
        ActionsBlock(elements=[ButtonElement(text="Go", action_id="go", value="1", style="danger",
                                             confirm=ConfirmObject(title="Sure?", text="Really"))]),
        ContextBlock(elements=[MarkdownTextObject(text="*x*"), PlainTextObject(text="y", emoji=True)]),
        RichTextBlock(elements=[RichTextSectionElement(elements=[])]),  # an empty list slack_sdk keeps
        SectionBlock(text="plain string text", fields=[]),  # an empty list slack_sdk drops
    ]
    for block in blocks:
        assert to_json_ready(block) == block.to_dict()


def test_invalid_blocks_are_refused_as_slack_sdk_refuses_them() -> None:
    too_long = SectionBlock(text=MarkdownTextObject(text="x" * 3001))
    with pytest.raises(SlackObjectFormationError):
        too_long.to_dict()
    with pytest.raises(SlackObjectFormationError):
        to_json_ready(too_long)
    too_many = ActionsBlock(elements=[ButtonElement(text=str(i), action_id=f"b{i}") for i in range(26)])
    with pytest.raises(SlackObjectFormationError):
        to_json_ready(too_many)
