"""The schema. Every hot table carries ``contact_id`` so it can be distributed by contact."""

from __future__ import annotations

from sqlalchemy import (
    Boolean,
    Column,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
    text,
)

from kaskad.adapters.storage.types import BIG_ID, UTCDateTime, json_type

metadata = MetaData(
    naming_convention={
        "ix": "ix_%(table_name)s_%(column_0_N_name)s",
        "uq": "uq_%(table_name)s_%(column_0_N_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)

api_keys = Table(
    "api_keys",
    metadata,
    Column("id", String(40), primary_key=True),
    Column("name", String(200), nullable=False),
    Column("key_hash", String(64), nullable=False, unique=True),
    Column("prefix", String(16), nullable=False),
    Column("created_at", UTCDateTime(), nullable=False),
    Column("revoked_at", UTCDateTime()),
)

contacts = Table(
    "contacts",
    metadata,
    Column("id", String(40), primary_key=True),
    # NULL once the contact is erased, so the same external id can start afresh.
    Column("external_id", String(200), unique=True),
    Column("phone", String(20)),
    Column("email", String(320)),
    Column("push_tokens", json_type(), nullable=False),
    Column("locale", String(35)),
    Column("timezone", String(64)),
    Column("attributes", json_type(), nullable=False),
    Column("consents", json_type(), nullable=False),
    Column("created_at", UTCDateTime(), nullable=False),
    Column("updated_at", UTCDateTime(), nullable=False),
    Column("erased_at", UTCDateTime()),
    Index("ix_contacts_timezone", "timezone", "id"),
    # Inbound messages (an SMS reply) find their contact by the sender's number.
    Index("ix_contacts_phone", "phone"),
)

events = Table(
    "events",
    metadata,
    Column("id", String(40), primary_key=True),
    Column("contact_id", String(40), ForeignKey("contacts.id"), nullable=False),
    Column("key", String(200), nullable=False),
    Column("type", String(100), nullable=False),
    Column("occurred_at", UTCDateTime(), nullable=False),
    Column("received_at", UTCDateTime(), nullable=False),
    Column("payload", json_type(), nullable=False),
    UniqueConstraint("key", "contact_id"),
    Index("ix_events_contact_occurred", "contact_id", "occurred_at"),
)

notifications = Table(
    "notifications",
    metadata,
    Column("id", String(40), primary_key=True),
    Column("contact_id", String(40), ForeignKey("contacts.id"), nullable=False),
    Column("idempotency_key", String(200)),
    Column("category", String(20), nullable=False),
    Column("priority", Integer, nullable=False),
    Column("steps", json_type(), nullable=False),
    Column("status", String(20), nullable=False),
    Column("current_step", Integer, nullable=False),
    # The cascade's timer: when the current step gives up. NULL once finished.
    Column("due_at", UTCDateTime()),
    Column("created_at", UTCDateTime(), nullable=False),
    Column("updated_at", UTCDateTime(), nullable=False),
    Column("finished_at", UTCDateTime()),
    # The journey run that sent it, woken when its cascade ends.
    Column("run_id", String(40)),
    # What templates render ``event.*`` from: the API's ``data`` or the journey's event.
    Column("data", json_type()),
    # What the contact pressure policy looks at: the content (the same key is sent once per
    # window on any channel), the topic relevance rules name, the journey, until when the
    # notification may wait for a free slot, and whether it was meant for this one contact.
    Column("content_key", String(200)),
    Column("topic", String(100)),
    Column("journey_id", String(100)),
    Column("valid_until", UTCDateTime()),
    Column("personal", Boolean, nullable=False, server_default=text("true")),
    UniqueConstraint("idempotency_key", "contact_id"),
    Index(
        "ix_notifications_due",
        "due_at",
        postgresql_where=text("due_at IS NOT NULL"),
        sqlite_where=text("due_at IS NOT NULL"),
    ),
    Index("ix_notifications_contact", "contact_id", "created_at"),
)

messages = Table(
    "messages",
    metadata,
    # The message id doubles as the client reference given to providers: a resend after a
    # crash carries the same one, so the provider (or its fake) can refuse the duplicate.
    Column("id", String(40), primary_key=True),
    Column("notification_id", String(40), ForeignKey("notifications.id"), nullable=False),
    Column("contact_id", String(40), ForeignKey("contacts.id"), nullable=False),
    Column("step", Integer, nullable=False),
    Column("channel", String(20), nullable=False),
    Column("provider", String(50), nullable=False),
    Column("address", String(320)),
    Column("content", json_type(), nullable=False),
    Column("status", String(20), nullable=False),
    Column("superseded", Boolean, nullable=False, server_default=text("false")),
    Column("provider_message_id", String(200)),
    Column("error", Text),
    Column("cost", Float),
    Column("currency", String(3)),
    Column("created_at", UTCDateTime(), nullable=False),
    Column("updated_at", UTCDateTime(), nullable=False),
    UniqueConstraint("notification_id", "step"),
    Index("ix_messages_provider_ref", "provider", "provider_message_id"),
    Index("ix_messages_contact", "contact_id", "created_at"),
)

message_statuses = Table(
    "message_statuses",
    metadata,
    Column("id", BIG_ID, primary_key=True, autoincrement=True),
    Column("message_id", String(40), ForeignKey("messages.id"), nullable=False),
    Column("contact_id", String(40), nullable=False),
    Column("status", String(20), nullable=False),
    Column("at", UTCDateTime(), nullable=False),
    Column("provider_status", String(100)),
    # False when recorded for history only (a late or backwards report).
    Column("applied", Boolean, nullable=False),
    Index("ix_message_statuses_message", "message_id", "at"),
)

outbox = Table(
    "outbox",
    metadata,
    Column("message_id", String(40), ForeignKey("messages.id"), primary_key=True),
    Column("contact_id", String(40), nullable=False),
    Column("provider", String(50), nullable=False),
    Column("priority", Integer, nullable=False),
    Column("due_at", UTCDateTime(), nullable=False),
    Column("attempts", Integer, nullable=False, server_default=text("0")),
    # Set while a sender holds the row; a sender that dies lets the lease run out.
    Column("lease_until", UTCDateTime()),
    Column("last_error", Text),
    Index("ix_outbox_next", text("priority DESC"), "due_at"),
)

decisions = Table(
    "decisions",
    metadata,
    Column("id", BIG_ID, primary_key=True, autoincrement=True),
    Column("contact_id", String(40), nullable=False),
    Column("notification_id", String(40)),
    Column("message_id", String(40)),
    Column("step", Integer),
    Column("kind", String(30), nullable=False),
    Column("reason", Text, nullable=False),
    Column("at", UTCDateTime(), nullable=False),
    Index("ix_decisions_notification", "notification_id"),
    Index("ix_decisions_contact", "contact_id", "at"),
)

sandbox_outcomes = Table(
    "sandbox_outcomes",
    metadata,
    Column("channel", String(20), primary_key=True),
    Column("address", String(320), primary_key=True),
    Column("outcome", String(20), nullable=False),
    Column("updated_at", UTCDateTime(), nullable=False),
)

sandbox_messages = Table(
    "sandbox_messages",
    metadata,
    # The sandbox plays an external provider: it keeps its own record of what it accepted,
    # keyed by the client reference, and refuses to accept one twice.
    Column("client_ref", String(40), primary_key=True),
    Column("provider_message_id", String(40), nullable=False, unique=True),
    Column("channel", String(20), nullable=False),
    Column("address", String(320)),
    Column("content", json_type(), nullable=False),
    Column("outcome", String(20), nullable=False),
    Column("accepted_at", UTCDateTime(), nullable=False),
    Column("attempts", Integer, nullable=False, server_default=text("1")),
)

sandbox_reports = Table(
    "sandbox_reports",
    metadata,
    Column("id", BIG_ID, primary_key=True, autoincrement=True),
    Column("provider_message_id", String(40), nullable=False),
    Column("status", String(20), nullable=False),
    Column("due_at", UTCDateTime(), nullable=False),
    Index("ix_sandbox_reports_due", "due_at"),
)

journeys = Table(
    "journeys",
    metadata,
    Column("id", String(100), primary_key=True),
    Column("name", String(200), nullable=False),
    Column("status", String(20), nullable=False),
    # The version new runs enter; NULL while the journey has only drafts.
    Column("version", Integer),
    Column("latest", Integer, nullable=False),
    # Of the live version, so intake finds the journeys an event starts without parsing any.
    Column("trigger_kind", String(20)),
    Column("trigger_event", String(100)),
    Column("created_at", UTCDateTime(), nullable=False),
    Column("updated_at", UTCDateTime(), nullable=False),
)

journey_versions = Table(
    "journey_versions",
    metadata,
    Column("journey_id", String(100), ForeignKey("journeys.id"), primary_key=True),
    Column("version", Integer, primary_key=True),
    Column("source", Text, nullable=False),
    Column("digest", String(64), nullable=False),
    Column("created_at", UTCDateTime(), nullable=False),
)

runs = Table(
    "runs",
    metadata,
    Column("id", String(40), primary_key=True),
    Column("contact_id", String(40), ForeignKey("contacts.id"), nullable=False),
    Column("journey_id", String(100), nullable=False),
    Column("version", Integer, nullable=False),
    Column("status", String(20), nullable=False),
    Column("position", Integer),
    Column("waiting", json_type()),
    # The run's timer: a wait's end or timeout. NULL while it waits on an event alone.
    Column("due_at", UTCDateTime()),
    Column("waiting_event", String(100)),
    Column("variant", String(100)),
    Column("outcomes", json_type(), nullable=False),
    Column("trigger", json_type(), nullable=False),
    Column("entered_at", UTCDateTime(), nullable=False),
    Column("updated_at", UTCDateTime(), nullable=False),
    Column("ended_at", UTCDateTime()),
    Column("ended_reason", Text),
    Index(
        "ix_runs_due",
        "due_at",
        postgresql_where=text("due_at IS NOT NULL"),
        sqlite_where=text("due_at IS NOT NULL"),
    ),
    Index("ix_runs_contact", "contact_id", "journey_id"),
    Index("ix_runs_journey", "journey_id", "version", "status"),
)

run_history = Table(
    "run_history",
    metadata,
    # Contact, journey and version are the run's: joined from runs, not repeated per line
    # (a million waiting runs keep two lines each).
    Column("id", BIG_ID, primary_key=True, autoincrement=True),
    Column("run_id", String(40), nullable=False),
    Column("step", String(100)),
    Column("kind", String(20), nullable=False),
    Column("text", Text, nullable=False),
    Column("at", UTCDateTime(), nullable=False),
    Index("ix_run_history_run", "run_id", "id"),
)

journey_schedules = Table(
    "journey_schedules",
    metadata,
    # One row per live journey with a schedule or date trigger: the next firing per zone.
    Column("journey_id", String(100), primary_key=True),
    Column("version", Integer, nullable=False),
    Column("zones", json_type(), nullable=False),
    Column("due_at", UTCDateTime()),
    # While a firing walks its contacts: the instant, its zones and the last contact done.
    Column("firing", json_type()),
    Column("updated_at", UTCDateTime(), nullable=False),
    Index(
        "ix_journey_schedules_due",
        "due_at",
        postgresql_where=text("due_at IS NOT NULL"),
        sqlite_where=text("due_at IS NOT NULL"),
    ),
)

templates = Table(
    "templates",
    metadata,
    Column("id", String(100), primary_key=True),
    Column("name", String(200), nullable=False),
    # The version messages render with; every apply of a changed document makes a new one.
    Column("version", Integer, nullable=False),
    Column("created_at", UTCDateTime(), nullable=False),
    Column("updated_at", UTCDateTime(), nullable=False),
)

template_versions = Table(
    "template_versions",
    metadata,
    Column("template_id", String(100), ForeignKey("templates.id"), primary_key=True),
    Column("version", Integer, primary_key=True),
    Column("source", Text, nullable=False),
    Column("digest", String(64), nullable=False),
    Column("created_at", UTCDateTime(), nullable=False),
)

message_links = Table(
    "message_links",
    metadata,
    # The links a rendered message carries as short links: the token names (message, link).
    Column("message_id", String(40), primary_key=True),
    Column("link", Integer, primary_key=True),
    Column("url", Text, nullable=False),
)

clicks = Table(
    "clicks",
    metadata,
    Column("id", BIG_ID, primary_key=True, autoincrement=True),
    Column("message_id", String(40), nullable=False),
    Column("contact_id", String(40), nullable=False),
    Column("link", Integer),
    Column("kind", String(20), nullable=False),
    Column("url", Text),
    Column("at", UTCDateTime(), nullable=False),
    Index("ix_clicks_message", "message_id"),
    Index("ix_clicks_contact", "contact_id", "at"),
)

early_reports = Table(
    "early_reports",
    metadata,
    # Reports naming a provider id kaskad has not stored yet (a receipt that beat the
    # provider's answer to the send): kept until the answer lands, then applied.
    Column("id", BIG_ID, primary_key=True, autoincrement=True),
    Column("provider", String(50), nullable=False),
    Column("provider_message_id", String(200), nullable=False),
    Column("report", json_type(), nullable=False),
    Column("received_at", UTCDateTime(), nullable=False),
    Index("ix_early_reports_ref", "provider", "provider_message_id"),
)

inbound_messages = Table(
    "inbound_messages",
    metadata,
    Column("id", String(40), primary_key=True),
    Column("provider", String(50), nullable=False),
    Column("channel", String(20), nullable=False),
    Column("sender", String(320), nullable=False),
    Column("recipient", String(320), nullable=False),
    Column("contact_id", String(40)),
    Column("text", Text, nullable=False),
    Column("provider_message_id", String(200)),
    Column("received_at", UTCDateTime(), nullable=False),
    Column("message_id", String(40)),
    Column("kind", String(20)),
    Index("ix_inbound_contact", "contact_id", "received_at"),
    Index("ix_inbound_provider_ref", "provider", "provider_message_id"),
)

number_lookups = Table(
    "number_lookups",
    metadata,
    Column("phone", String(20), primary_key=True),
    Column("provider", String(50), nullable=False),
    Column("status", String(20), nullable=False),
    Column("network", String(10)),
    Column("network_name", String(100)),
    Column("original_network", String(10)),
    Column("ported", Boolean, nullable=False),
    Column("details", json_type(), nullable=False),
    Column("checked_at", UTCDateTime(), nullable=False),
    Column("expires_at", UTCDateTime(), nullable=False),
    Index("ix_number_lookups_expires", "expires_at"),
)

send_log = Table(
    "send_log",
    metadata,
    # One row per message handed to the outbox: what frequency caps and de-duplication count,
    # read by contact and time, so many workers agree on it.
    Column("id", BIG_ID, primary_key=True, autoincrement=True),
    Column("contact_id", String(40), nullable=False),
    Column("notification_id", String(40), nullable=False),
    Column("message_id", String(40), nullable=False),
    Column("category", String(20), nullable=False),
    Column("channel", String(20), nullable=False),
    Column("topic", String(100)),
    Column("content_key", String(200)),
    Column("journey_id", String(100)),
    Column("at", UTCDateTime(), nullable=False),
    # Covering on PostgreSQL: a contact's recent sends are read from the index alone.
    Index(
        "ix_send_log_contact_at",
        "contact_id",
        "at",
        postgresql_include=[
            "notification_id",
            "category",
            "channel",
            "topic",
            "content_key",
            "journey_id",
        ],
    ),
    Index("ix_send_log_at", "at"),
)

suppressions = Table(
    "suppressions",
    metadata,
    # The global suppression list: addresses nothing is sent to, on one channel or all ("*").
    Column("address", String(320), primary_key=True),
    Column("channel", String(20), primary_key=True),
    Column("reason", Text, nullable=False),
    Column("created_at", UTCDateTime(), nullable=False),
)

policies = Table(
    "policies",
    metadata,
    # Every policy ever applied; the highest version is in force.
    Column("version", Integer, primary_key=True, autoincrement=False),
    Column("source", Text, nullable=False),
    Column("digest", String(64), nullable=False),
    Column("created_at", UTCDateTime(), nullable=False),
)

verifications = Table(
    "verifications",
    metadata,
    # One-time codes. Only a keyed hash of the code is kept, and only while the verification
    # is pending; phone and IP are kept as keyed hashes, enough to count sends against
    # pumping. ``masked`` holds each step's content with the code masked: it replaces the
    # sent content once the verification is settled.
    Column("id", String(40), primary_key=True),
    Column("contact_id", String(40), ForeignKey("contacts.id"), nullable=False),
    Column("notification_id", String(40), ForeignKey("notifications.id"), nullable=False),
    Column("status", String(20), nullable=False),
    Column("code_hash", String(64)),
    Column("attempts", Integer, nullable=False),
    Column("max_attempts", Integer, nullable=False),
    Column("expires_at", UTCDateTime(), nullable=False),
    Column("phone_key", String(64)),
    Column("ip_key", String(64)),
    Column("channels", json_type(), nullable=False),
    Column("masked", json_type(), nullable=False),
    Column("created_at", UTCDateTime(), nullable=False),
    Column("updated_at", UTCDateTime(), nullable=False),
    Column("finished_at", UTCDateTime()),
    Index("ix_verifications_contact", "contact_id", "created_at"),
    Index("ix_verifications_phone", "phone_key", "created_at"),
    Index("ix_verifications_ip", "ip_key", "created_at"),
    Index(
        "ix_verifications_pending",
        "expires_at",
        postgresql_where=text("status = 'pending'"),
        sqlite_where=text("status = 'pending'"),
    ),
)
