"""The cascade state machine: start, status reports, timeouts, skips and late reports."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime, timedelta

import pytest

from kaskad.domain.cascades import (
    DEFAULT_TIMEOUT,
    Cascade,
    CascadeState,
    CascadeStatus,
    Decision,
    DecisionKind,
    SendStep,
    Step,
    SupersedeStep,
    Transition,
)
from kaskad.domain.contacts import Reachability
from kaskad.domain.vocabulary import Category, Channel, MessageStatus, Until

S = MessageStatus
K = DecisionKind
T0 = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
SECOND = timedelta(seconds=1)
MICROSECOND = timedelta(microseconds=1)
VIBER_TIMEOUT = timedelta(seconds=60)
SMS_TIMEOUT = timedelta(minutes=2)

EVERYWHERE = Reachability(
    phone="+380671234567", email="anna@example.com", push_tokens=("push-token",)
)


def step(
    channel: Channel, until: Until = Until.DELIVERED, timeout: timedelta = VIBER_TIMEOUT
) -> Step:
    return Step(channel, {"text": "Payment of 250 UAH done"}, until, timeout)


def cascade(
    *steps: Step,
    category: Category = Category.TRANSACTIONAL,
    contact: Reachability = EVERYWHERE,
) -> Cascade:
    return Cascade(list(steps), category, contact)


def viber_sms(until: Until = Until.DELIVERED) -> Cascade:
    return cascade(step(Channel.VIBER, until), step(Channel.SMS, until, SMS_TIMEOUT))


def started(c: Cascade, now: datetime = T0) -> CascadeState:
    return c.start(now).state


def on_sms(c: Cascade) -> CascadeState:
    """A viber→sms cascade that fell back to sms at T0 + 10s."""
    state = c.on_status(started(c), 0, S.UNDELIVERABLE, T0 + 10 * SECOND).state
    assert state.current == 1
    return state


def unchanged(t: Transition, state: CascadeState) -> None:
    assert t.state == state
    assert t.effects == ()
    assert t.decisions == ()


# -- start ---------------------------------------------------------------------------------


def test_start_sends_the_first_step() -> None:
    t = viber_sms().start(T0)
    assert t.state == CascadeState(CascadeStatus.ACTIVE, 0, T0 + VIBER_TIMEOUT)
    assert t.effects == (SendStep(0),)
    assert t.sends == (0,)
    assert t.decisions == (Decision(K.SEND, "send viber, waiting up to 60s for delivered", 0),)


@pytest.mark.parametrize(
    ("s", "text"),
    [
        (
            step(Channel.SMS, Until.SENT, timedelta(seconds=90)),
            "send sms, waiting up to 90s for sent",
        ),
        (
            step(Channel.EMAIL, Until.SEEN, timedelta(hours=2)),
            "send email, waiting up to 2h for seen",
        ),
        (
            step(Channel.PUSH, Until.CLICKED, timedelta(days=3)),
            "send push, waiting up to 3d for clicked",
        ),
        (Step(Channel.VOICE, {"text": "x"}), "send voice, waiting up to 1d for delivered"),
    ],
)
def test_start_decision_describes_the_wait(s: Step, text: str) -> None:
    t = cascade(s).start(T0)
    assert t.decisions == (Decision(K.SEND, text, 0),)
    assert t.state.due_at == T0 + s.timeout


def test_default_step_waits_a_day_for_delivery() -> None:
    s = Step(Channel.SMS, {"text": "x"})
    assert s.until is Until.DELIVERED
    assert s.timeout == DEFAULT_TIMEOUT == timedelta(hours=24)


def test_initial_state() -> None:
    state = CascadeState()
    assert state.status is CascadeStatus.ACTIVE
    assert state.current == -1
    assert state.due_at is None
    assert not state.finished


@pytest.mark.parametrize(
    ("status", "finished"),
    [(CascadeStatus.ACTIVE, False), (CascadeStatus.COMPLETED, True), (CascadeStatus.FAILED, True)],
)
def test_finished(status: CascadeStatus, finished: bool) -> None:
    assert CascadeState(status, 0, None).finished is finished


def test_transition_sends_lists_only_send_effects() -> None:
    t = Transition(CascadeState(), (SupersedeStep(0), SendStep(2)))
    assert t.sends == (2,)
    assert Transition(CascadeState(), (SupersedeStep(1),)).sends == ()


# -- status reports on the current step: until × status --------------------------------------

COMPLETE, FALLBACK, WAIT = "complete", "fallback", "wait"

UNTIL_STATUS_TABLE = [
    # until=sent
    (Until.SENT, S.SUBMITTED, WAIT),
    (Until.SENT, S.SENT, COMPLETE),
    (Until.SENT, S.DELIVERED, COMPLETE),
    (Until.SENT, S.SEEN, COMPLETE),
    (Until.SENT, S.CLICKED, COMPLETE),
    (Until.SENT, S.FAILED, FALLBACK),
    (Until.SENT, S.EXPIRED, FALLBACK),
    (Until.SENT, S.REJECTED, FALLBACK),
    (Until.SENT, S.UNDELIVERABLE, FALLBACK),
    # until=delivered
    (Until.DELIVERED, S.SUBMITTED, WAIT),
    (Until.DELIVERED, S.SENT, WAIT),
    (Until.DELIVERED, S.DELIVERED, COMPLETE),
    (Until.DELIVERED, S.SEEN, COMPLETE),
    (Until.DELIVERED, S.CLICKED, COMPLETE),
    (Until.DELIVERED, S.FAILED, FALLBACK),
    (Until.DELIVERED, S.EXPIRED, FALLBACK),
    (Until.DELIVERED, S.REJECTED, FALLBACK),
    (Until.DELIVERED, S.UNDELIVERABLE, FALLBACK),
    # until=seen
    (Until.SEEN, S.SUBMITTED, WAIT),
    (Until.SEEN, S.SENT, WAIT),
    (Until.SEEN, S.DELIVERED, WAIT),
    (Until.SEEN, S.SEEN, COMPLETE),
    (Until.SEEN, S.CLICKED, COMPLETE),
    (Until.SEEN, S.FAILED, FALLBACK),
    (Until.SEEN, S.EXPIRED, FALLBACK),
    (Until.SEEN, S.REJECTED, FALLBACK),
    (Until.SEEN, S.UNDELIVERABLE, FALLBACK),
    # until=clicked
    (Until.CLICKED, S.SUBMITTED, WAIT),
    (Until.CLICKED, S.SENT, WAIT),
    (Until.CLICKED, S.DELIVERED, WAIT),
    (Until.CLICKED, S.SEEN, WAIT),
    (Until.CLICKED, S.CLICKED, COMPLETE),
    (Until.CLICKED, S.FAILED, FALLBACK),
    (Until.CLICKED, S.EXPIRED, FALLBACK),
    (Until.CLICKED, S.REJECTED, FALLBACK),
    (Until.CLICKED, S.UNDELIVERABLE, FALLBACK),
    # statuses a provider does not usually report, for completeness
    (Until.SENT, S.PLANNED, WAIT),
    (Until.SENT, S.QUEUED, WAIT),
    (Until.DELIVERED, S.SUPPRESSED, FALLBACK),
    (Until.DELIVERED, S.CANCELLED, FALLBACK),
]


def test_table_covers_every_until_and_reported_status() -> None:
    reported = [S.SUBMITTED, S.SENT, S.DELIVERED, S.SEEN, S.CLICKED]
    reported += [S.FAILED, S.EXPIRED, S.REJECTED, S.UNDELIVERABLE]
    pairs = {(u, s) for u, s, _ in UNTIL_STATUS_TABLE}
    assert {(u, s) for u in Until for s in reported} <= pairs


@pytest.mark.parametrize(("until", "status", "outcome"), UNTIL_STATUS_TABLE)
def test_status_on_first_step(until: Until, status: MessageStatus, outcome: str) -> None:
    c = viber_sms(until)
    state = started(c)
    now = T0 + 10 * SECOND
    t = c.on_status(state, 0, status, now)
    if outcome == COMPLETE:
        assert t.state == CascadeState(CascadeStatus.COMPLETED, 0, None)
        assert t.effects == ()
        assert t.decisions == (Decision(K.COMPLETE, f"viber {status}: cascade complete", 0),)
    elif outcome == FALLBACK:
        assert t.state == CascadeState(CascadeStatus.ACTIVE, 1, now + SMS_TIMEOUT)
        assert t.effects == (SupersedeStep(0), SendStep(1))
        assert t.decisions == (
            Decision(K.FALLBACK, f"viber {status} → sms", 1),
            Decision(K.SEND, f"send sms, waiting up to 2m for {until}", 1),
        )
    else:
        unchanged(t, state)


@pytest.mark.parametrize(("until", "status", "outcome"), UNTIL_STATUS_TABLE)
def test_status_on_last_step(until: Until, status: MessageStatus, outcome: str) -> None:
    c = viber_sms(until)
    state = on_sms(c)
    now = T0 + 30 * SECOND
    t = c.on_status(state, 1, status, now)
    if outcome == COMPLETE:
        assert t.state == CascadeState(CascadeStatus.COMPLETED, 1, None)
        assert t.effects == ()
        assert t.decisions == (Decision(K.COMPLETE, f"sms {status}: cascade complete", 1),)
    elif outcome == FALLBACK:
        assert t.state == CascadeState(CascadeStatus.FAILED, 1, None)
        assert t.effects == (SupersedeStep(1, by_next=False),)
        assert t.decisions == (Decision(K.FAIL, f"sms {status}; no more steps: cascade failed"),)
    else:
        unchanged(t, state)


def test_failure_decision_text() -> None:
    c = viber_sms()
    t = c.on_status(started(c), 0, S.UNDELIVERABLE, T0 + SECOND)
    assert [d.reason for d in t.decisions] == [
        "viber undeliverable → sms",
        "send sms, waiting up to 2m for delivered",
    ]
    assert [d.kind for d in t.decisions] == [K.FALLBACK, K.SEND]


def test_waiting_reports_keep_the_same_deadline() -> None:
    c = viber_sms(Until.SEEN)
    state = started(c)
    for status in (S.SUBMITTED, S.SENT, S.DELIVERED):
        t = c.on_status(state, 0, status, T0 + 50 * SECOND)
        unchanged(t, state)
        assert t.state.due_at == T0 + VIBER_TIMEOUT


# -- timeouts -------------------------------------------------------------------------------


def test_timeout_exactly_at_due_at_falls_back() -> None:
    c = viber_sms()
    state = started(c)
    assert state.due_at == T0 + VIBER_TIMEOUT
    now = state.due_at
    t = c.on_timeout(state, now)
    assert t.state == CascadeState(CascadeStatus.ACTIVE, 1, now + SMS_TIMEOUT)
    assert t.effects == (SupersedeStep(0), SendStep(1))
    assert t.decisions == (
        Decision(K.FALLBACK, "viber not delivered within 60s → sms", 1),
        Decision(K.SEND, "send sms, waiting up to 2m for delivered", 1),
    )


def test_timeout_one_microsecond_early_changes_nothing() -> None:
    c = viber_sms()
    state = started(c)
    assert state.due_at is not None
    unchanged(c.on_timeout(state, state.due_at - MICROSECOND), state)


@pytest.mark.parametrize("early", [MICROSECOND, SECOND, VIBER_TIMEOUT])
def test_timeout_before_due_at_changes_nothing(early: timedelta) -> None:
    c = viber_sms()
    state = started(c)
    unchanged(c.on_timeout(state, T0 + VIBER_TIMEOUT - early), state)


def test_late_timer_sets_the_next_deadline_from_now() -> None:
    c = viber_sms()
    now = T0 + timedelta(hours=5)
    t = c.on_timeout(started(c), now)
    assert t.state.current == 1
    assert t.state.due_at == now + SMS_TIMEOUT
    assert t.decisions[0].reason == "viber not delivered within 60s → sms"


@pytest.mark.parametrize(
    ("until", "timeout", "text"),
    [
        (Until.SENT, timedelta(seconds=30), "viber not sent within 30s → sms"),
        (Until.DELIVERED, timedelta(seconds=60), "viber not delivered within 60s → sms"),
        (Until.DELIVERED, timedelta(seconds=90), "viber not delivered within 90s → sms"),
        (Until.SEEN, timedelta(minutes=5), "viber not seen within 5m → sms"),
        (Until.SEEN, timedelta(minutes=90), "viber not seen within 90m → sms"),
        (Until.CLICKED, timedelta(hours=1), "viber not clicked within 1h → sms"),
        (Until.CLICKED, timedelta(days=2), "viber not clicked within 2d → sms"),
    ],
)
def test_timeout_decision_text(until: Until, timeout: timedelta, text: str) -> None:
    c = cascade(step(Channel.VIBER, until, timeout), step(Channel.SMS))
    state = started(c)
    t = c.on_timeout(state, T0 + timeout)
    assert t.decisions[0] == Decision(K.FALLBACK, text, 1)


def test_timeout_on_last_step_fails_the_cascade() -> None:
    c = viber_sms()
    state = on_sms(c)
    assert state.due_at is not None
    t = c.on_timeout(state, state.due_at)
    assert t.state == CascadeState(CascadeStatus.FAILED, 1, None)
    assert t.effects == (SupersedeStep(1, by_next=False),)
    assert t.sends == ()
    assert t.decisions == (
        Decision(K.FAIL, "sms not delivered within 2m; no more steps: cascade failed"),
    )
    assert t.decisions[-1].reason.endswith("no more steps: cascade failed")


def test_timeout_on_single_step_cascade_fails_it() -> None:
    c = cascade(step(Channel.SMS, Until.SENT, timedelta(seconds=30)))
    t = c.on_timeout(started(c), T0 + timedelta(seconds=30))
    assert t.state.status is CascadeStatus.FAILED
    assert t.decisions == (
        Decision(K.FAIL, "sms not sent within 30s; no more steps: cascade failed"),
    )


@pytest.mark.parametrize("after", [timedelta(0), VIBER_TIMEOUT, timedelta(days=30)])
def test_timeout_after_completion_changes_nothing(after: timedelta) -> None:
    c = viber_sms()
    done = c.on_status(started(c), 0, S.DELIVERED, T0 + SECOND).state
    assert done.status is CascadeStatus.COMPLETED
    unchanged(c.on_timeout(done, T0 + VIBER_TIMEOUT + after), done)


@pytest.mark.parametrize("after", [timedelta(0), SMS_TIMEOUT, timedelta(days=30)])
def test_timeout_after_failure_changes_nothing(after: timedelta) -> None:
    c = viber_sms()
    state = on_sms(c)
    failed = c.on_status(state, 1, S.REJECTED, T0 + 20 * SECOND).state
    assert failed.status is CascadeStatus.FAILED
    unchanged(c.on_timeout(failed, T0 + 20 * SECOND + after), failed)


def test_timeout_without_a_deadline_changes_nothing() -> None:
    c = viber_sms()
    state = CascadeState()
    unchanged(c.on_timeout(state, T0 + timedelta(days=365)), state)


def test_stale_timer_for_the_superseded_step_changes_nothing() -> None:
    # viber failed at T0+10s, sms is due at T0+10s+2m; viber's old deadline was T0+60s.
    c = viber_sms()
    state = on_sms(c)
    unchanged(c.on_timeout(state, T0 + VIBER_TIMEOUT), state)


# -- skips ----------------------------------------------------------------------------------

NO_EMAIL = Reachability(phone="+380671234567")
NO_PHONE = Reachability(email="anna@example.com")


@pytest.mark.parametrize(
    ("steps", "category", "contact", "skips", "sent"),
    [
        (
            [Channel.EMAIL, Channel.SMS],
            Category.TRANSACTIONAL,
            NO_EMAIL,
            ["email skipped: contact has no email address"],
            1,
        ),
        (
            [Channel.PUSH, Channel.SMS],
            Category.SERVICE,
            NO_EMAIL,
            ["push skipped: contact has no push token"],
            1,
        ),
        (
            [Channel.VIBER, Channel.WHATSAPP, Channel.EMAIL],
            Category.SECURITY,
            NO_PHONE,
            [
                "viber skipped: contact has no phone number",
                "whatsapp skipped: contact has no phone number",
            ],
            2,
        ),
        (
            [Channel.SMS, Channel.EMAIL],
            Category.MARKETING,
            Reachability(
                phone="+380671234567",
                email="anna@example.com",
                consents={"email": {"marketing": True}},
            ),
            ["sms skipped: no marketing consent on sms"],
            1,
        ),
        (
            [Channel.VIBER, Channel.SMS],
            Category.TRANSACTIONAL,
            Reachability(phone="+380671234567", consents={"viber": {"*": False}}),
            ["viber skipped: contact opted out of transactional on viber"],
            1,
        ),
        (
            [Channel.VIBER, Channel.SMS],
            Category.MARKETING,
            Reachability(
                phone="+380671234567",
                consents={"*": {"marketing": True}, "viber": {"marketing": False}},
            ),
            ["viber skipped: contact opted out of marketing on viber"],
            1,
        ),
        (
            [Channel.SMS, Channel.VIBER],
            Category.MARKETING,
            Reachability(phone="+380671234567", consents={"sms": {"marketing": True}}),
            [],
            0,
        ),
    ],
    ids=["no-email", "no-push", "no-phone", "marketing", "opt-out", "opt-out-wins", "none"],
)
def test_start_skips_unreachable_steps(
    steps: list[Channel],
    category: Category,
    contact: Reachability,
    skips: list[str],
    sent: int,
) -> None:
    c = cascade(*(step(ch) for ch in steps), category=category, contact=contact)
    t = c.start(T0)
    assert t.state == CascadeState(CascadeStatus.ACTIVE, sent, T0 + VIBER_TIMEOUT)
    assert t.effects == (SendStep(sent),)
    expected = [Decision(K.SKIP, reason, i) for i, reason in enumerate(skips)]
    expected.append(Decision(K.SEND, f"send {steps[sent]}, waiting up to 60s for delivered", sent))
    assert list(t.decisions) == expected
    assert all(d.kind is not K.FALLBACK for d in t.decisions)


@pytest.mark.parametrize(
    ("steps", "category", "contact", "reasons"),
    [
        (
            [Channel.EMAIL],
            Category.TRANSACTIONAL,
            NO_EMAIL,
            ["email skipped: contact has no email address"],
        ),
        (
            [Channel.SMS, Channel.EMAIL],
            Category.MARKETING,
            EVERYWHERE,
            [
                "sms skipped: no marketing consent on sms",
                "email skipped: no marketing consent on email",
            ],
        ),
        (
            [Channel.SMS, Channel.PUSH],
            Category.SERVICE,
            Reachability(phone="+380671234567", erased=True),
            ["sms skipped: the contact was erased", "push skipped: the contact was erased"],
        ),
        (
            [Channel.VIBER, Channel.SMS],
            Category.SECURITY,
            Reachability(phone="+380671234567", consents={"*": {"*": False}}),
            [
                "viber skipped: contact opted out of security on viber",
                "sms skipped: contact opted out of security on sms",
            ],
        ),
    ],
    ids=["no-address", "no-marketing-consent", "erased", "opted-out-everywhere"],
)
def test_start_with_no_reachable_step_fails(
    steps: list[Channel], category: Category, contact: Reachability, reasons: list[str]
) -> None:
    c = cascade(*(step(ch) for ch in steps), category=category, contact=contact)
    t = c.start(T0)
    assert t.state == CascadeState(CascadeStatus.FAILED, -1, None)
    assert t.effects == ()
    assert t.decisions == (
        *(Decision(K.SKIP, r, i) for i, r in enumerate(reasons)),
        Decision(K.FAIL, "no step can reach the contact: cascade failed"),
    )


def test_fallback_skips_unreachable_steps_and_sends_the_next_reachable() -> None:
    c = cascade(
        step(Channel.VIBER),
        step(Channel.EMAIL),
        step(Channel.PUSH),
        step(Channel.SMS),
        contact=NO_EMAIL,
    )
    now = T0 + 5 * SECOND
    t = c.on_status(started(c), 0, S.UNDELIVERABLE, now)
    assert t.state == CascadeState(CascadeStatus.ACTIVE, 3, now + VIBER_TIMEOUT)
    assert t.effects == (SupersedeStep(0), SendStep(3))
    assert t.decisions == (
        Decision(K.FALLBACK, "viber undeliverable → sms", 3),
        Decision(K.SKIP, "email skipped: contact has no email address", 1),
        Decision(K.SKIP, "push skipped: contact has no push token", 2),
        Decision(K.SEND, "send sms, waiting up to 60s for delivered", 3),
    )


def test_timeout_fallback_skips_too() -> None:
    c = cascade(step(Channel.VIBER), step(Channel.EMAIL), step(Channel.SMS), contact=NO_EMAIL)
    t = c.on_timeout(started(c), T0 + VIBER_TIMEOUT)
    assert t.sends == (2,)
    assert [d.kind for d in t.decisions] == [K.FALLBACK, K.SKIP, K.SEND]
    assert t.decisions[0].reason == "viber not delivered within 60s → sms"


def test_fallback_with_only_unreachable_steps_left_fails() -> None:
    c = cascade(step(Channel.VIBER), step(Channel.EMAIL), contact=NO_EMAIL)
    t = c.on_status(started(c), 0, S.EXPIRED, T0 + SECOND)
    assert t.state == CascadeState(CascadeStatus.FAILED, 0, None)
    assert t.effects == (SupersedeStep(0, by_next=False),)
    assert t.decisions == (
        Decision(K.SKIP, "email skipped: contact has no email address", 1),
        Decision(K.FAIL, "viber expired; no more steps: cascade failed"),
    )


# -- late reports -----------------------------------------------------------------------------


@pytest.mark.parametrize("status", [S.DELIVERED, S.SEEN, S.CLICKED])
def test_goal_report_for_a_superseded_step_is_a_late_report(status: MessageStatus) -> None:
    c = viber_sms()
    state = on_sms(c)
    t = c.on_status(state, 0, status, T0 + 20 * SECOND)
    # The goal is reached after all: the cascade completes and the sms, if still queued, is
    # cancelled rather than sent.
    assert t.state == CascadeState(CascadeStatus.COMPLETED, 1, None)
    assert t.effects == (SupersedeStep(1),)
    assert t.sends == ()
    assert t.decisions == (
        Decision(
            K.LATE_REPORT,
            f"late report: viber {status} after the cascade moved on to sms; recorded, no new send",
            0,
        ),
        Decision(K.COMPLETE, f"viber {status}: cascade complete"),
    )


def test_late_report_after_the_cascade_completed_on_a_later_step() -> None:
    c = viber_sms()
    done = c.on_status(on_sms(c), 1, S.DELIVERED, T0 + 20 * SECOND).state
    assert done == CascadeState(CascadeStatus.COMPLETED, 1, None)
    t = c.on_status(done, 0, S.DELIVERED, T0 + 30 * SECOND)
    assert t.state == done
    assert t.effects == ()
    assert t.decisions == (
        Decision(
            K.LATE_REPORT,
            "late report: viber delivered after the cascade completed on sms; "
            "recorded, no new send",
            0,
        ),
    )


def test_late_report_after_the_cascade_failed() -> None:
    c = viber_sms()
    failed = c.on_status(on_sms(c), 1, S.FAILED, T0 + 20 * SECOND).state
    assert failed.status is CascadeStatus.FAILED
    t = c.on_status(failed, 0, S.DELIVERED, T0 + 30 * SECOND)
    assert t.state == failed
    assert t.effects == ()
    assert [d.kind for d in t.decisions] == [K.LATE_REPORT]
    assert t.decisions[0].reason.endswith("recorded, no new send")


@pytest.mark.parametrize(
    "status",
    [S.SUBMITTED, S.SENT, S.FAILED, S.EXPIRED, S.REJECTED, S.UNDELIVERABLE, S.CANCELLED],
)
def test_non_goal_report_for_a_superseded_step_is_silent(status: MessageStatus) -> None:
    c = viber_sms()  # until=delivered: sent does not reach it
    state = on_sms(c)
    unchanged(c.on_status(state, 0, status, T0 + 20 * SECOND), state)


def test_late_report_reads_the_superseded_steps_own_goal() -> None:
    # viber waits for sent, sms for clicked: a late viber "sent" is a late report.
    c = cascade(step(Channel.VIBER, Until.SENT), step(Channel.SMS, Until.CLICKED))
    state = c.on_status(started(c), 0, S.REJECTED, T0 + SECOND).state
    t = c.on_status(state, 0, S.SENT, T0 + 2 * SECOND)
    assert [d.kind for d in t.decisions] == [K.LATE_REPORT, K.COMPLETE]
    assert t.state == CascadeState(CascadeStatus.COMPLETED, state.current, None)


@pytest.mark.parametrize("status", list(MessageStatus))
def test_report_for_the_current_step_after_completion_does_nothing(status: MessageStatus) -> None:
    c = viber_sms()
    done = c.on_status(started(c), 0, S.DELIVERED, T0 + SECOND).state
    unchanged(c.on_status(done, 0, status, T0 + 2 * SECOND), done)


@pytest.mark.parametrize("status", list(MessageStatus))
def test_report_for_the_current_step_after_failure_sends_nothing(status: MessageStatus) -> None:
    c = viber_sms()
    failed = c.on_status(on_sms(c), 1, S.UNDELIVERABLE, T0 + 20 * SECOND).state
    t = c.on_status(failed, 1, status, T0 + 30 * SECOND)
    assert t.state == failed
    assert t.effects == ()


@pytest.mark.parametrize("status", list(MessageStatus))
def test_report_for_a_completed_cascades_later_step_does_nothing(status: MessageStatus) -> None:
    c = viber_sms()
    done = c.on_status(started(c), 0, S.DELIVERED, T0 + SECOND).state
    unchanged(c.on_status(done, 1, status, T0 + 2 * SECOND), done)


# -- never the same step twice --------------------------------------------------------------


@pytest.mark.parametrize(
    "second", [S.FAILED, S.EXPIRED, S.REJECTED, S.UNDELIVERABLE, S.DELIVERED, S.CLICKED]
)
def test_a_second_report_for_a_fallen_back_step_never_sends_again(second: MessageStatus) -> None:
    c = cascade(step(Channel.VIBER), step(Channel.WHATSAPP), step(Channel.SMS))
    first = c.on_status(started(c), 0, S.UNDELIVERABLE, T0 + SECOND)
    assert first.sends == (1,)
    again = c.on_status(first.state, 0, second, T0 + 2 * SECOND)
    assert again.sends == ()
    if second in (S.DELIVERED, S.CLICKED):  # a late goal completes; nothing more is sent
        assert again.state == CascadeState(CascadeStatus.COMPLETED, 1, None)
    else:
        assert again.state == first.state


def test_timeout_after_a_failure_report_never_skips_a_step() -> None:
    c = cascade(step(Channel.VIBER), step(Channel.WHATSAPP), step(Channel.SMS))
    state = c.on_status(started(c), 0, S.FAILED, T0 + SECOND).state
    # the old viber deadline passes while whatsapp is in flight (due T0+61s)
    unchanged(c.on_timeout(state, T0 + VIBER_TIMEOUT), state)
    t = c.on_timeout(state, T0 + SECOND + VIBER_TIMEOUT)
    assert t.sends == (2,)


def test_three_step_walk() -> None:
    c = cascade(
        step(Channel.VIBER, Until.SEEN, timedelta(seconds=60)),
        step(Channel.WHATSAPP, Until.DELIVERED, timedelta(minutes=5)),
        step(Channel.SMS, Until.SENT, timedelta(hours=1)),
    )
    sends: list[int] = []
    decisions: list[Decision] = []

    t = c.start(T0)
    sends += t.sends
    decisions += t.decisions
    t = c.on_status(t.state, 0, S.DELIVERED, T0 + 10 * SECOND)  # not yet seen: wait
    assert t.decisions == ()
    t = c.on_timeout(t.state, T0 + 60 * SECOND)
    sends += t.sends
    decisions += t.decisions
    t = c.on_status(t.state, 1, S.REJECTED, T0 + 70 * SECOND)
    sends += t.sends
    decisions += t.decisions
    t = c.on_status(t.state, 2, S.SENT, T0 + 80 * SECOND)
    decisions += t.decisions

    assert sends == [0, 1, 2]
    assert t.state == CascadeState(CascadeStatus.COMPLETED, 2, None)
    assert [(d.kind, d.reason, d.step) for d in decisions] == [
        (K.SEND, "send viber, waiting up to 60s for seen", 0),
        (K.FALLBACK, "viber not seen within 60s → whatsapp", 1),
        (K.SEND, "send whatsapp, waiting up to 5m for delivered", 1),
        (K.FALLBACK, "whatsapp rejected → sms", 2),
        (K.SEND, "send sms, waiting up to 1h for sent", 2),
        (K.COMPLETE, "sms sent: cascade complete", 2),
    ]


def test_transitions_do_not_mutate_their_input() -> None:
    c = viber_sms()
    state = started(c)
    snapshot = CascadeState(state.status, state.current, state.due_at)
    c.on_status(state, 0, S.FAILED, T0 + SECOND)
    c.on_timeout(state, T0 + VIBER_TIMEOUT)
    c.on_status(state, 0, S.DELIVERED, T0 + SECOND)
    assert state == snapshot


def test_content_is_not_consulted_by_the_state_machine() -> None:
    content: Mapping[str, str] = {}
    c = cascade(Step(Channel.SMS, content, Until.SENT, SECOND))
    assert c.start(T0).sends == (0,)


def test_start_with_the_longest_accepted_timeout_does_not_overflow() -> None:
    # `now + step.timeout` (cascades.py) overflows past datetime.max; parse_duration's
    # upper bound is what keeps API-supplied timeouts inside it.
    from kaskad.domain.durations import parse_duration

    longest = parse_duration("3650d")
    c = cascade(Step(Channel.SMS, {"text": "x"}, Until.SENT, longest))
    t = c.start(T0)
    assert t.sends == (0,)
    assert t.state.due_at == T0 + timedelta(days=3650)
    assert t.decisions[0].reason == "send sms, waiting up to 3650d for sent"


def test_current_step_goal_after_the_last_step_timed_out_is_a_late_report() -> None:
    c = viber_sms()
    state = on_sms(c)
    failed = c.on_timeout(state, state.due_at).state  # type: ignore[arg-type]
    assert failed.status is CascadeStatus.FAILED
    t = c.on_status(failed, 1, S.DELIVERED, T0 + 600 * SECOND)
    assert t.state == failed
    assert t.effects == ()
    assert [d.reason for d in t.decisions] == [
        "late report: sms delivered after the cascade failed; recorded, no new send"
    ]


def test_cancel_stops_an_active_cascade_and_only_it() -> None:
    c = viber_sms()
    state = started(c)
    t = c.cancel(state, "contact erased")
    assert t.state == CascadeState(CascadeStatus.CANCELLED, 0, None)
    assert t.effects == (SupersedeStep(0, by_next=False),)
    assert [d.reason for d in t.decisions] == ["contact erased: cascade cancelled"]
    unchanged(c.cancel(t.state, "again"), t.state)
    unchanged(c.on_status(t.state, 0, S.DELIVERED, T0 + SECOND), t.state)
    unchanged(c.on_timeout(t.state, T0 + VIBER_TIMEOUT), t.state)
