"""Demo data for ``make run``: contacts, sandbox outcomes, an API key and a short tour."""

from __future__ import annotations

from rich.console import Console

from kaskad.bootstrap import App
from kaskad.domain.vocabulary import Channel
from kaskad.services import apikeys, contacts, sandbox
from kaskad.services.contacts import ContactPatch

DEMO_CONTACTS = [
    ContactPatch(
        external_id="demo-anna",
        phone="+380501234567",
        email="anna@example.com",
        locale="uk-UA",
        attributes={"first_name": "Anna", "region": "Kyiv"},
        consents={"*": {"marketing": True}},
    ),
    ContactPatch(
        external_id="demo-bohdan",
        phone="+380671112233",
        push_tokens=["demo-push-token-bohdan"],
        locale="uk-UA",
        attributes={"first_name": "Bohdan", "region": "Lviv"},
    ),
    ContactPatch(
        external_id="demo-carol",
        phone="+12025550143",
        email="carol@example.com",
        locale="en-US",
        attributes={"first_name": "Carol", "region": "Washington"},
    ),
]


def seed(app: App, console: Console) -> str:
    now = app.clock.now()
    contacts.upsert_contacts(app.uow(), patches=DEMO_CONTACTS, default_region=None, now=now)
    sandbox.set_outcome(
        app.uow(),
        channel=Channel.VIBER,
        address="+380501234567",
        outcome="undelivered",
        default_region=None,
        now=now,
    )
    key = apikeys.create_api_key(app.uow(), name="demo", now=now, replace=True)
    base = f"http://{app.settings.host}:{app.settings.port}"
    console.print(
        f"""
[bold]kaskad demo[/bold] — SQLite at {app.settings.database_url}, sandbox providers.

API key (demo): [bold]{key}[/bold]
API docs:       {base}/docs   (click "Authorize" and paste the key)
Health:         {base}/healthz   Metrics: {base}/metrics

Demo contacts: demo-anna (Viber set to undelivered), demo-bohdan, demo-carol.

Send a Viber message that falls back to SMS after 10 seconds:

  curl -s -X POST {base}/v1/notifications \\
    -H 'Authorization: Bearer {key}' -H 'Content-Type: application/json' \\
    -d '{{"contact": "demo-anna", "category": "transactional",
         "cascade": [{{"channel": "viber", "content": {{"text": "Payment of 250 UAH done"}},
                      "until": "delivered", "timeout": "10s"}},
                     {{"channel": "sms", "content": {{"text": "Payment of 250 UAH done"}}}}]}}'

Then, after ~12 seconds, see the decisions and Anna's timeline:

  curl -s {base}/v1/notifications/<id> -H 'Authorization: Bearer {key}'
  curl -s {base}/v1/contacts/demo-anna/timeline -H 'Authorization: Bearer {key}'
""",
        soft_wrap=True,
    )
    return key
