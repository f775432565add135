"""SMS end to end through the engine and a real SMSC process, on both databases: a
notification goes out over SMPP, the receipt comes back on the same bind and moves the
cascade; a customer's reply is stored on the contact; `kaskad providers test` reports."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from sqlalchemy import Engine, select
from typer.testing import CliRunner

from kaskad.adapters.channels.sms.smpp import SmppProvider
from kaskad.adapters.storage import schema
from kaskad.bootstrap import App, ConfigurationError, build
from kaskad.domain.cascades import Step
from kaskad.domain.notifications import NotificationRequest
from kaskad.domain.vocabulary import Category, Channel, Until
from kaskad.engine.clock import VirtualClock
from kaskad.interfaces.cli.main import cli
from kaskad.services import contacts, notifications
from kaskad.services.contacts import ContactPatch
from tests.conftest import make_settings
from tests.peers.smsc import SmscPeer, start_smsc

PHONE = "+380501234567"
PASSWORD_ENV = "KASKAD_TEST_SMSC_PASSWORD"


@pytest.fixture
def smsc() -> Iterator[SmscPeer]:
    with start_smsc(system_id="kaskad", password="secret") as peer:
        yield peer


def smsc_settings(peer: SmscPeer) -> dict[str, Any]:
    return {
        "type": "smpp",
        "host": "127.0.0.1",
        "port": peer.smpp_port,
        "system_id": "kaskad",
        "password_env": PASSWORD_ENV,
        "source_addr": "MyBank",
        "enquire_link_seconds": 5,
    }


@pytest.fixture
def sms_app(
    database_url: str,
    db: Engine,
    clock: VirtualClock,
    smsc: SmscPeer,
    monkeypatch: pytest.MonkeyPatch,
) -> App:
    monkeypatch.setenv(PASSWORD_ENV, "secret")
    settings = make_settings(
        database_url,
        providers={"smsc": smsc_settings(smsc)},
        channels={"sms": "smsc", "email": "sandbox"},
    )
    return build(settings, clock=clock, db=db)


def _contact(app: App, clock: VirtualClock) -> None:
    contacts.upsert_contacts(
        app.uow(),
        patches=[ContactPatch(external_id="c1", phone=PHONE, email="anna@example.com")],
        default_region=None,
        now=clock.now(),
    )


def _notify(app: App, clock: VirtualClock, text: str) -> None:
    request = NotificationRequest(
        contact="c1",
        category=Category.SECURITY,
        priority=100,
        steps=[
            Step(Channel.SMS, {"text": text}, Until.DELIVERED),
            Step(Channel.EMAIL, {"subject": "Code", "text": text}),
        ],
    )
    notifications.accept_notification(
        app.uow(), request=request, routing=app.routing, now=clock.now()
    )


def _rows(app: App, table: Any) -> list[dict[str, Any]]:
    with app.uow() as uow:
        return [dict(r) for r in uow.connection.execute(select(table)).mappings()]


async def _until(check: Callable[[], bool], what: str, timeout: float = 20) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not await asyncio.to_thread(check):
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.02)


def test_settings_build_an_smpp_provider(sms_app: App) -> None:
    provider = sms_app.providers["smsc"]
    assert isinstance(provider, SmppProvider)
    assert sms_app.routing[Channel.SMS] == "smsc"


def test_a_missing_password_variable_is_a_configuration_error(
    database_url: str, smsc: SmscPeer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(PASSWORD_ENV, raising=False)
    settings = make_settings(database_url, providers={"smsc": smsc_settings(smsc)})
    with pytest.raises(ConfigurationError, match=PASSWORD_ENV):
        build(settings)


def test_sms_is_delivered_through_the_smsc_and_the_receipt_ends_the_cascade(
    sms_app: App, clock: VirtualClock, smsc: SmscPeer
) -> None:
    _contact(sms_app, clock)
    text = "Код підтвердження 4821. Нікому його не повідомляйте."
    _notify(sms_app, clock, text)

    def delivered() -> bool:
        return [m["status"] for m in _rows(sms_app, schema.messages)] == ["delivered"]

    async def main() -> None:
        await sms_app.engine.start_providers()
        try:
            await _until(lambda: sms_app.providers["smsc"].bound > 0, "the bind")  # type: ignore[attr-defined]
            await sms_app.engine.drain_outbox_once()
            await _until(delivered, "the delivery receipt")
        finally:
            await sms_app.engine.stop_providers()

    asyncio.run(main())
    received = smsc.call("state")["messages"]
    assert [(m["destination"], m["text"]) for m in received] == [(PHONE[1:], text)]
    assert received[0]["data_coding"] == 8  # Ukrainian: UCS-2
    (message,) = _rows(sms_app, schema.messages)
    assert message["provider"] == "smsc"
    assert message["provider_message_id"] in received[0]["message_ids"]
    (owner,) = _rows(sms_app, schema.notifications)
    assert owner["status"] == "completed"  # no fallback to email


def test_a_reply_is_stored_on_the_contact(
    sms_app: App, clock: VirtualClock, smsc: SmscPeer
) -> None:
    _contact(sms_app, clock)

    def stored() -> bool:
        return len(_rows(sms_app, schema.inbound_messages)) == 1

    async def main() -> None:
        await sms_app.engine.start_providers()
        try:
            await _until(lambda: sms_app.providers["smsc"].bound > 0, "the bind")  # type: ignore[attr-defined]
            await smsc.ask("mo", source=PHONE[1:], source_ton=1, destination="7111", text="STOP")
            await _until(stored, "the inbound message")
        finally:
            await sms_app.engine.stop_providers()

    asyncio.run(main())
    (row,) = _rows(sms_app, schema.inbound_messages)
    assert (row["sender"], row["text"], row["provider"]) == (PHONE, "STOP", "smsc")
    assert row["contact_id"] is not None
    events = _rows(sms_app, schema.events)
    assert sorted(e["type"] for e in events) == ["consent.changed", "message.received"]  # STOP


def test_providers_test_sends_one_message_and_reports(
    smsc: SmscPeer, monkeypatch: pytest.MonkeyPatch, tmp_path: Any
) -> None:
    monkeypatch.setenv(PASSWORD_ENV, "secret")
    monkeypatch.setenv("KASKAD_DATABASE_URL", f"sqlite:///{tmp_path}/unused.db")
    monkeypatch.setenv("KASKAD_PROVIDERS", json.dumps({"smsc": smsc_settings(smsc)}))
    monkeypatch.setenv("KASKAD_LOG_LEVEL", "WARNING")
    runner = CliRunner()
    result = runner.invoke(cli, ["providers", "test", "smsc", "--to", PHONE, "--wait", "10"])
    assert result.exit_code == 0, result.output
    assert "accepted: sms to" in result.output
    assert "report: delivered (DELIVRD" in result.output
    assert PHONE not in result.output  # masked
    assert [m["text"] for m in smsc.call("state")["messages"]] == ["kaskad test message"]
    listed = runner.invoke(cli, ["providers", "list"])
    assert "smsc" in listed.output
    assert "smpp" in listed.output
    refused = runner.invoke(cli, ["providers", "test", "nope", "--to", PHONE])
    assert refused.exit_code == 2
    assert "no provider 'nope'" in refused.output


def test_providers_test_exits_non_zero_on_a_refusal(
    smsc: SmscPeer, monkeypatch: pytest.MonkeyPatch, tmp_path: Any
) -> None:
    smsc.call("route", destination=PHONE[1:], command_status=11)  # ESME_RINVDSTADR
    monkeypatch.setenv(PASSWORD_ENV, "secret")
    monkeypatch.setenv("KASKAD_DATABASE_URL", f"sqlite:///{tmp_path}/unused.db")
    monkeypatch.setenv("KASKAD_PROVIDERS", json.dumps({"smsc": smsc_settings(smsc)}))
    monkeypatch.setenv("KASKAD_LOG_LEVEL", "WARNING")
    result = CliRunner().invoke(cli, ["providers", "test", "smsc", "--to", PHONE])
    assert result.exit_code == 1
    assert result.output.startswith("failed: sms to")
