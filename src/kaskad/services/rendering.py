"""Rendering templated messages at send time, with tracked links.

A message that names a template is rendered when a sender claims it: with the template's
live version, the contact as it is now and the notification's data. Its links become signed
short links on kaskad's own address (the originals kept per message), an email gets an open
pixel and a one-click unsubscribe link. A render that cannot complete (a missing variable,
a template or variant that does not exist) fails that message with the reason; it is never
sent half-filled.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

from kaskad.adapters.storage.unit_of_work import UnitOfWork
from kaskad.domain.links import LinkRef, open_pixel, rewrite_links, sign_link
from kaskad.domain.templates import RenderError, Template, render
from kaskad.domain.vocabulary import Category, Channel
from kaskad.services.cascading import TEMPLATE_KEY
from kaskad.services.templates import live_templates

VERSION_KEY: Final = "$version"
# Fields whose links are rewritten, per channel, and whether they hold HTML.
LINK_FIELDS: Final[Mapping[Channel, tuple[tuple[str, bool], ...]]] = {
    Channel.SMS: (("text", False),),
    Channel.EMAIL: (("html", True), ("text", False)),
    Channel.VIBER: (("text", False),),
    Channel.WHATSAPP: (("text", False),),
    Channel.PUSH: (("text", False),),
    Channel.VOICE: (),
}


@dataclass(frozen=True, slots=True)
class Tracking:
    """How links are tracked: kaskad's public address and the key that signs tokens."""

    key: bytes
    base_url: str
    enabled: bool = True

    def link(self, ref: LinkRef) -> str:
        prefix = {"click": "r", "open": "o", "unsubscribe": "u"}[ref.kind]
        return f"{self.base_url}/{prefix}/{sign_link(self.key, ref)}"


NO_TRACKING: Final = Tracking(key=b"kaskad", base_url="http://127.0.0.1:8000", enabled=False)


@dataclass(frozen=True, slots=True)
class Rendered:
    content: dict[str, Any]
    links: list[str]


def is_templated(content: Mapping[str, Any]) -> bool:
    return TEMPLATE_KEY in content


def render_messages(
    uow: UnitOfWork,
    messages: Sequence[Mapping[str, Any]],
    categories: Mapping[str, str],
    tracking: Tracking,
) -> tuple[dict[str, Rendered], dict[str, str]]:
    """Render templated messages; return the content per message id and, for those that
    could not be rendered, the reason. ``categories`` is each notification's category."""
    templates = live_templates(uow, {str(m["content"][TEMPLATE_KEY]) for m in messages})
    contacts = uow.contacts.by_ids(m["contact_id"] for m in messages)
    data = uow.notifications.data_of(m["notification_id"] for m in messages)
    done: dict[str, Rendered] = {}
    failed: dict[str, str] = {}
    for message in messages:
        name = str(message["content"][TEMPLATE_KEY])
        if name not in templates:
            failed[message["id"]] = f"template {name!r} does not exist"
            continue
        version, template = templates[name]
        contact = contacts.get(message["contact_id"]) or {}
        try:
            done[message["id"]] = render_message(
                message,
                template,
                version,
                contact,
                data.get(message["notification_id"]) or {},
                Category(categories[message["notification_id"]]),
                tracking,
            )
        except RenderError as exc:
            failed[message["id"]] = f"template {name!r} v{version}: {exc}"
    return done, failed


def render_message(
    message: Mapping[str, Any],
    template: Template,
    version: int,
    contact: Mapping[str, Any],
    data: Mapping[str, Any],
    category: Category,
    tracking: Tracking,
) -> Rendered:
    channel = Channel(message["channel"])
    overrides = {k: v for k, v in message["content"].items() if not k.startswith("$")}
    result = render(
        template,
        channel=channel,
        locale=contact.get("locale") or template.default_locale,
        scope=template_scope(contact, data, message),
    )
    content: dict[str, Any] = {**result.content, **overrides}
    links: list[str] | None = None  # None: links are not tracked in this message
    if tracking.enabled and template.track_links:
        links = _track(content, channel, message["id"], tracking)
    if links is not None and channel is Channel.EMAIL and content.get("html"):
        pixel = tracking.link(LinkRef(message["id"], 0, "open"))
        content["html"] = open_pixel(str(content["html"]), pixel)
    if channel is Channel.EMAIL and category is Category.MARKETING:
        # RFC 8058 one-click unsubscribe: required by the large mailbox providers for bulk
        # mail, and kept whether or not links are tracked.
        content["unsubscribe_url"] = tracking.link(LinkRef(message["id"], 0, "unsubscribe"))
    content[TEMPLATE_KEY] = template.id
    content[VERSION_KEY] = version
    return Rendered(content, links or [])


def template_scope(
    contact: Mapping[str, Any], data: Mapping[str, Any], message: Mapping[str, Any]
) -> dict[str, Any]:
    fields = {
        "external_id": contact.get("external_id"),
        "phone": contact.get("phone"),
        "email": contact.get("email"),
        "locale": contact.get("locale"),
        "timezone": contact.get("timezone"),
    }
    return {
        "contact": {**(contact.get("attributes") or {}), **fields},
        "event": dict(data),
        "message": {"id": message.get("id"), "channel": message.get("channel")},
    }


def _track(
    content: dict[str, Any], channel: Channel, message_id: str, tracking: Tracking
) -> list[str]:
    """Rewrite the links of every field of the channel; one numbering across fields, the
    same URL keeping one number (an email's HTML and text parts share their links)."""
    urls: list[str] = []

    def shorten(url: str) -> str:
        if url not in urls:
            urls.append(url)
        return tracking.link(LinkRef(message_id, urls.index(url), "click"))

    for field, html in LINK_FIELDS[channel]:
        if isinstance(content.get(field), str):
            content[field], _ = rewrite_links(content[field], html=html, shorten=shorten)
    button = content.get("button")
    if channel is Channel.VIBER and isinstance(button, dict) and button.get("url"):
        content["button"] = {**button, "url": _shorten_one(str(button["url"]), shorten)}
    return urls


def _shorten_one(url: str, shorten: Callable[[str], str]) -> str:
    if url.startswith(("http://", "https://")):
        return shorten(url)
    return url


def track_sample(content: dict[str, Any], channel: Channel, tracking: Tracking) -> None:
    """Shorten links as a real send would, for a preview: same length, no stored link."""
    _track(content, channel, SAMPLE_MESSAGE, tracking)


SAMPLE_MESSAGE: Final = "msg_" + "0" * 26
