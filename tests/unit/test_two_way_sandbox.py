"""The sandbox's keypresses as a voice provider reports them: a CLICKED report for the call
and the keys as an inbound message on it, from the sandbox's own webhook body."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest

from kaskad.adapters.channels.sandbox import (
    SandboxDelays,
    SandboxWebhook,
    keypresses,
    report_body,
)
from kaskad.domain.providers import WebhookError, WebhookRequest
from kaskad.domain.vocabulary import Channel, MessageStatus

AT = datetime(2026, 3, 2, 1, 0, 4, tzinfo=UTC)
CALL = {"client_ref": "msg-1", "channel": "voice", "address": "+380501234567"}


def test_a_keypress_outcome_answers_then_presses() -> None:
    delays = SandboxDelays(sent=1, delivered=2, clicked=4)
    assert delays.schedule("keypress:12#") == [
        ("SENT", timedelta(seconds=1)),
        ("DELIVERED", timedelta(seconds=2)),
        ("DTMF:12#", timedelta(seconds=4)),
    ]


def test_the_keys_are_a_click_and_an_inbound_message_on_the_call() -> None:
    body = report_body(
        [{"provider_message_id": "sbx-1", "status": "DTMF:1", "due_at": AT}], {"sbx-1": CALL}
    )
    request = WebhookRequest("POST", "http://kaskad/v1/webhooks/sandbox", {}, {}, body)
    callback = SandboxWebhook().read(request)
    [report] = callback.reports
    assert (report.status, report.message_id, report.provider_message_id) == (
        MessageStatus.CLICKED,
        "msg-1",
        "sbx-1",
    )
    [pressed] = callback.inbound
    assert (pressed.channel, pressed.sender, pressed.text, pressed.at) == (
        Channel.VOICE,
        "+380501234567",
        "1",
        AT,
    )
    assert (pressed.in_reply_to, pressed.provider_message_id) == ("sbx-1", "sbx-1:dtmf")


def test_plain_reports_carry_no_keys() -> None:
    body = report_body(
        [{"provider_message_id": "sbx-1", "status": "DELIVERED", "due_at": AT}], {"sbx-1": CALL}
    )
    assert keypresses(body) == []


@pytest.mark.parametrize("body", [b"nonsense", json.dumps({"results": 3}).encode()])
def test_an_unreadable_body(body: bytes) -> None:
    with pytest.raises(WebhookError):
        keypresses(body)


def test_a_get_is_refused() -> None:
    with pytest.raises(WebhookError, match="POSTed"):
        SandboxWebhook().read(WebhookRequest("GET", "http://kaskad/", {}, {}, b""))
