"""Journey definitions: every trigger and step kind, every refusal with its path and line."""

from __future__ import annotations

import re
from datetime import time, timedelta
from pathlib import Path

import pytest

from kaskad.domain.cascades import Step as CascadeStep
from kaskad.domain.conditions import parse
from kaskad.domain.journeys.cron import parse_cron
from kaskad.domain.journeys.definition import (
    ApiTrigger,
    DateTrigger,
    EventMatch,
    EventTrigger,
    JourneyDefinition,
    ScheduleTrigger,
    SegmentTrigger,
    Trigger,
    load_definition,
    parse_definition,
)
from kaskad.domain.journeys.rules import ONCE, Reentry, ReentryKind
from kaskad.domain.journeys.source import MAX_PROBLEMS, JourneyError
from kaskad.domain.journeys.steps import (
    EXIT_INDEX,
    BranchCase,
    BranchStep,
    ExitStep,
    JourneyStep,
    SendStep,
    SplitStep,
    SplitVariant,
    UpdateStep,
    WaitDuration,
    WaitForEvent,
    WaitForSend,
    WaitStep,
    WaitUntilDate,
    WaitUntilTime,
)
from kaskad.domain.vocabulary import Category, Channel, Until

ROOT = Path(__file__).resolve().parents[2]
# Four lines, so the first step is always on line 5.
HEAD = "id: j\nname: J\ntrigger: {api: true}\nsteps:\n"
SMS = "{category: service, cascade: [{channel: sms, content: {text: hi}}]}"
SMS_STEP = CascadeStep(Channel.SMS, {"text": "hi"}, Until.DELIVERED, timedelta(hours=24), None)
DAY = timedelta(days=1)

Found = list[tuple[str, int | None, str]]


def steps_of(steps: str) -> tuple[JourneyStep, ...]:
    return load_definition(HEAD + steps).steps


def problems(text: str) -> Found:
    with pytest.raises(JourneyError) as info:
        load_definition(text)
    return [(p.path, p.line, p.message) for p in info.value.problems]


def send(step_id: str, next_: int | None) -> SendStep:
    return SendStep(step_id, Category.SERVICE, 60, (SMS_STEP,), None, next_)


# The format as documented ------------------------------------------------------------------


def test_the_example_in_the_docs_loads() -> None:
    docs = (ROOT / "docs" / "journeys.md").read_text(encoding="utf-8")
    match = re.search(r"```yaml\n(.*?)```", docs, re.DOTALL)
    assert match is not None
    definition = load_definition(match.group(1), filename="docs/journeys.md")
    assert definition.id == "credit-card-offer"
    assert [step.id for step in definition.steps] == [
        "email_offer",
        "step-2",
        "viber_offer",
        "next_morning",
        "step-5",
        "sms_deadline",
    ]
    branch = definition.step_by_id("step-5")
    assert isinstance(branch, BranchStep)
    assert branch.cases[0].goto == EXIT_INDEX
    assert branch.cases[1].goto == definition.index_of("sms_deadline")
    assert branch.otherwise == EXIT_INDEX  # else: exit
    assert definition.goal == EventMatch("card_issued", parse('payload.product == "credit_card"'))
    assert definition.exit_on == (EventMatch("loan_repaid"),)


def test_defaults() -> None:
    definition = load_definition(HEAD + "  - exit: done\n")
    assert definition.reentry == ONCE
    assert definition.max_active_runs == 1
    assert definition.goal is None
    assert definition.exit_on == ()
    assert definition.trigger == ApiTrigger()


def test_top_level_values() -> None:
    text = (
        "id: loan-offer_2\nname: Loan offer\ntrigger: {api: true}\nreentry: 30d\n"
        "max_active_runs: 3\ngoal: {event: loan_issued}\n"
        "exit_on: [{event: loan_repaid}, {event: 'card:blocked'}]\nsteps: [{exit: done}]\n"
    )
    definition = load_definition(text)
    assert (definition.id, definition.name) == ("loan-offer_2", "Loan offer")
    assert definition.reentry == Reentry(ReentryKind.EVERY, timedelta(days=30))
    assert definition.max_active_runs == 3
    assert definition.goal == EventMatch("loan_issued", None)
    assert definition.exit_on == (EventMatch("loan_repaid"), EventMatch("card:blocked"))


def test_json_journeys_report_lines_too() -> None:
    text = (
        '{"id": "j", "name": "J",\n "trigger": {"api": true},\n'
        ' "steps": [\n  {"wait": "2 dayz"}\n ]\n}'
    )
    assert problems(text) == [
        ("steps[0].wait", 4, '"2 dayz" is not a duration (use e.g. 60s, 5m, 2h, 3d)')
    ]


def test_plain_data_without_lines() -> None:
    data = {"id": "j", "name": "J", "trigger": {"api": True}, "steps": [{"wait": "1h"}]}
    assert parse_definition(data).steps == (
        WaitStep("step-1", WaitDuration(timedelta(hours=1)), None),
    )
    with pytest.raises(JourneyError) as info:
        parse_definition({**data, "steps": [{"wait": "1 hour"}]})
    assert [(p.path, p.line) for p in info.value.problems] == [("steps[0].wait", None)]


def test_not_a_mapping() -> None:
    with pytest.raises(JourneyError) as info:
        parse_definition(["id", "j"])
    assert [p.message for p in info.value.problems] == [
        "expected a mapping (id, name, trigger, steps, reentry, max_active_runs, goal, exit_on), "
        "got a list"
    ]


# Triggers ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("trigger", "expected"),
    [
        ("{event: payment}", EventTrigger("payment", None)),
        (
            "{event: payment, where: payload.amount > 100}",
            EventTrigger("payment", parse("payload.amount > 100")),
        ),
        (
            "{segment: days_since(contact.last_login) > 30}",
            SegmentTrigger(parse("days_since(contact.last_login) > 30")),
        ),
        ("{schedule: {cron: '0 10 * * 1'}}", ScheduleTrigger(parse_cron("0 10 * * 1"), None)),
        (
            "{schedule: {cron: '0 10 * * mon'}, where: contact.age >= 21}",
            ScheduleTrigger(parse_cron("0 10 * * mon"), parse("contact.age >= 21")),
        ),
        (
            "{date: {attribute: tariff_change_date, offset: -3d, at: '10:00'}}",
            DateTrigger("tariff_change_date", timedelta(days=-3), time(10), None),
        ),
        (
            "{date: {attribute: birthday}, where: exists(contact.email)}",
            DateTrigger("birthday", timedelta(0), None, parse("exists(contact.email)")),
        ),
        (
            "{date: {attribute: d, offset: +2h, at: 9:30}}",
            DateTrigger("d", timedelta(hours=2), time(9, 30), None),
        ),
        ("{api: true}", ApiTrigger()),
    ],
)
def test_triggers(trigger: str, expected: Trigger) -> None:
    text = f"id: j\nname: J\ntrigger: {trigger}\nsteps: [{{exit: done}}]\n"
    assert load_definition(text).trigger == expected


# Steps -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("steps", "expected"),
    [
        pytest.param(f"  - send: {SMS}\n", (send("step-1", None),), id="send-defaults"),
        pytest.param(
            "  - id: alert\n"
            "    send:\n"
            "      category: security\n"
            "      priority: 5\n"
            "      content_key: alerts/fraud-1\n"
            "      cascade:\n"
            "        - {channel: voice, content: {text: call}, until: delivered, timeout: 60s}\n"
            "        - channel: push\n"
            "          content: {title: Alert}\n"
            "          until: seen\n"
            "          timeout: 90\n"
            "          provider: fcm\n"
            "        - {channel: email, content: {subject: S, html: <p>x</p>}, until: clicked}\n",
            (
                SendStep(
                    "alert",
                    Category.SECURITY,
                    5,
                    (
                        CascadeStep(
                            Channel.VOICE, {"text": "call"}, Until.DELIVERED, timedelta(seconds=60)
                        ),
                        CascadeStep(
                            Channel.PUSH,
                            {"title": "Alert"},
                            Until.SEEN,
                            timedelta(seconds=90),
                            "fcm",
                        ),
                        CascadeStep(
                            Channel.EMAIL, {"subject": "S", "html": "<p>x</p>"}, Until.CLICKED, DAY
                        ),
                    ),
                    "alerts/fraud-1",
                    None,
                ),
            ),
            id="send-everything",
        ),
        pytest.param(
            "  - send:\n"
            "      category: marketing\n"
            "      cascade: [{channel: viber, content: {image_url: x}}]\n",
            (
                SendStep(
                    "step-1",
                    Category.MARKETING,
                    20,
                    (CascadeStep(Channel.VIBER, {"image_url": "x"}, Until.DELIVERED, DAY),),
                    None,
                    None,
                ),
            ),
            id="send-priority-by-category",
        ),
        pytest.param(
            "  - wait: 2d\n", (WaitStep("step-1", WaitDuration(2 * DAY), None),), id="wait-duration"
        ),
        pytest.param(
            "  - wait: 90\n",
            (WaitStep("step-1", WaitDuration(timedelta(seconds=90)), None),),
            id="wait-seconds",
        ),
        pytest.param(
            "  - wait: {until: '10:00'}\n",
            (WaitStep("step-1", WaitUntilTime(time(10)), None),),
            id="wait-until",
        ),
        pytest.param(
            "  - wait: {until: 10:00}\n",  # unquoted: YAML 1.1 would make it 600
            (WaitStep("step-1", WaitUntilTime(time(10)), None),),
            id="wait-until-unquoted",
        ),
        pytest.param(
            "  - wait: {attribute: tariff_change_date, offset: -3d, at: '10:00'}\n",
            (
                WaitStep(
                    "step-1",
                    WaitUntilDate("tariff_change_date", timedelta(days=-3), time(10)),
                    None,
                ),
            ),
            id="wait-date",
        ),
        pytest.param(
            "  - wait: {attribute: renewal_date, offset: 0}\n",
            (WaitStep("step-1", WaitUntilDate("renewal_date", timedelta(0), None), None),),
            id="wait-date-on-the-day",
        ),
        pytest.param(
            "  - wait: {event: login, where: payload.device == 'app', timeout: 3d}\n",
            (
                WaitStep(
                    "step-1", WaitForEvent("login", parse("payload.device == 'app'"), 3 * DAY), None
                ),
            ),
            id="wait-event",
        ),
        pytest.param(
            f"  - id: offer\n    send: {SMS}\n  - wait: {{send: offer, timeout: 1d}}\n"
            f"  - wait: {{send: offer}}\n",
            (
                send("offer", 1),
                WaitStep("step-2", WaitForSend("offer", DAY), 2),
                WaitStep("step-3", WaitForSend("offer", None), None),
            ),
            id="wait-send",
        ),
        pytest.param(
            "  - branch:\n"
            "      - when: contact.vip == true\n"
            "        goto: vip\n"
            "      - when: contact.age < 18\n"
            "        goto: exit\n"
            "      - else: other\n"
            "  - id: vip\n"
            "    exit: vip\n"
            "  - id: other\n"
            "    exit: other\n",
            (
                BranchStep(
                    "step-1",
                    (
                        BranchCase(parse("contact.vip == true"), 1),
                        BranchCase(parse("contact.age < 18"), EXIT_INDEX),
                    ),
                    2,
                    1,
                ),
                ExitStep("vip", "vip"),
                ExitStep("other", "other"),
            ),
            id="branch",
        ),
        pytest.param(
            "  - branch: [{when: contact.vip, goto: exit}]\n  - exit: done\n",
            (
                BranchStep("step-1", (BranchCase(parse("contact.vip"), EXIT_INDEX),), 1, 1),
                ExitStep("step-2", "done"),
            ),
            id="branch-else-defaults-to-next",
        ),
        pytest.param(
            "  - split:\n"
            "      - {variant: a, weight: 50, goto: b_side}\n"
            "      - {variant: b, weight: 50}\n"
            "      - {variant: paused, weight: 0, goto: exit}\n"
            "  - wait: 1h\n"
            "  - id: b_side\n"
            "    exit: b\n",
            (
                SplitStep(
                    "step-1",
                    (
                        SplitVariant("a", 50, 2),
                        SplitVariant("b", 50, 1),
                        SplitVariant("paused", 0, EXIT_INDEX),
                    ),
                    1,
                ),
                WaitStep("step-2", WaitDuration(timedelta(hours=1)), 2),
                ExitStep("b_side", "b"),
            ),
            id="split",
        ),
        pytest.param(
            "  - update: {attributes: {promo_sent: true, tier: gold, score: 7, tags: [a]}}\n",
            (
                UpdateStep(
                    "step-1", {"promo_sent": True, "tier": "gold", "score": 7, "tags": ["a"]}, None
                ),
            ),
            id="update",
        ),
        pytest.param(
            "  - exit: not relevant any more\n",
            (ExitStep("step-1", "not relevant any more"),),
            id="exit",
        ),
    ],
)
def test_steps(steps: str, expected: tuple[JourneyStep, ...]) -> None:
    assert steps_of(steps) == expected


def test_next_follows_the_list_and_goto() -> None:
    definition = load_definition(
        HEAD
        + "  - id: first\n    wait: 1d\n    goto: third\n"
        + "  - id: second\n    wait: 1d\n    goto: exit\n"
        + "  - id: third\n    wait: 1d\n"
        + "  - wait: 1d\n"
    )
    assert [(step.id, step.next) for step in definition.steps] == [
        ("first", 2),
        ("second", EXIT_INDEX),  # goto: exit
        ("third", 3),
        ("step-4", None),
    ]


def test_step_lookup() -> None:
    definition = load_definition(HEAD + f"  - wait: 1d\n  - id: offer\n    send: {SMS}\n")
    assert definition.step_by_id("offer") == send("offer", None)
    assert definition.step_by_id("step-1") == definition.steps[0]
    assert definition.index_of("offer") == 1
    with pytest.raises(KeyError):
        definition.step_by_id("nope")


def test_a_definition_refuses_duplicate_step_ids() -> None:
    step = ExitStep("a", "done")
    with pytest.raises(ValueError, match="unique"):
        JourneyDefinition("j", "J", ApiTrigger(), ONCE, 1, None, (), (step, step))


# Refusals ----------------------------------------------------------------------------------


def _head(**replace: str) -> str:
    fields = {"id": "j", "name": "J", "trigger": "{api: true}"}
    fields.update(replace)
    return "".join(f"{key}: {value}\n" for key, value in fields.items()) + "steps:\n"


TOP_LEVEL: list[tuple[str, Found]] = [
    (
        "id: j\nnmae: J\ntrigger: {api: true}\nsteps: [{exit: x}]\n",
        [("", 1, 'missing "name"'), ("nmae", 2, 'unknown key "nmae" — did you mean "name"?')],
    ),
    (
        "name: J\ntrigger: {api: true}\n",
        [("", 1, 'missing "id"'), ("", 1, 'missing "steps"')],
    ),
    (
        "id: Loan Offer\nname: J\ntrigger: {api: true}\nsteps: [{exit: x}]\n",
        [
            (
                "id",
                1,
                '"Loan Offer" is not valid: a journey id is lower-case letters, digits, _ and -, '
                "starting with a letter or digit",
            )
        ],
    ),
    (
        "id: j\nname: ''\ntrigger: {api: true}\nsteps: [{exit: x}]\n",
        [("name", 2, "expected text, got empty text")],
    ),
    (
        "id: j\nname: J\ntrigger: {api: true}\nreentry: 30\nsteps: [{exit: x}]\n",
        [("reentry", 4, "reentry 30 must be once, always or a duration such as 30d")],
    ),
    (
        "id: j\nname: J\ntrigger: {api: true}\nreentry: sometimes\nsteps: [{exit: x}]\n",
        [("reentry", 4, "reentry 'sometimes' must be once, always or a duration such as 30d")],
    ),
    (
        "id: j\nname: J\ntrigger: {api: true}\nmax_active_runs: 0\nsteps: [{exit: x}]\n",
        [("max_active_runs", 4, "0 is out of range (1 to 1000)")],
    ),
    (
        "id: j\nname: J\ntrigger: {api: true}\nmax_active_runs: '2'\nsteps: [{exit: x}]\n",
        [("max_active_runs", 4, 'expected a whole number, got text "2"')],
    ),
    (
        "id: j\nname: J\ntrigger: {api: true}\nsteps: []\n",
        [("steps", 4, "expected a list of steps, got an empty list")],
    ),
    (
        "id: j\nname: J\ntrigger: {api: true}\nsteps: {wait: 1d}\n",
        [("steps", 4, "expected a list of steps, got a mapping")],
    ),
    (
        "id: j\nname: J\ntrigger: {api: true}\ngoal: {where: payload.x}\nsteps: [{exit: x}]\n",
        [("goal", 4, 'missing "event"')],
    ),
    (
        "id: j\nname: J\ntrigger: {api: true}\nexit_on:\n  - event: repaid\n    if: payload.x\n"
        "steps: [{exit: x}]\n",
        [("exit_on[0].if", 6, 'unknown key "if" — expected one of event, where')],
    ),
    (
        "id: j\nname: J\ntrigger: {api: true}\nexit_on: {event: repaid}\nsteps: [{exit: x}]\n",
        [("exit_on", 4, "expected a list such as [{event: loan_repaid}], got a mapping")],
    ),
]

TRIGGERS: list[tuple[str, Found]] = [
    (
        "{event: payment, segment: contact.vip}",
        [
            (
                "trigger",
                3,
                "a trigger has exactly one of event, segment, schedule, date, api; "
                "this one has event and segment",
            )
        ],
    ),
    (
        "{where: contact.vip}",
        [("trigger", 3, "a trigger has exactly one of event, segment, schedule, date, api")],
    ),
    (
        "{evnt: payment}",
        [
            ("trigger.evnt", 3, 'unknown key "evnt" — did you mean "event"?'),
            ("trigger", 3, "a trigger has exactly one of event, segment, schedule, date, api"),
        ],
    ),
    (
        "salary_received",
        [
            (
                "trigger",
                3,
                "expected a mapping with one of event, segment, schedule, date, api, "
                'got text "salary_received"',
            )
        ],
    ),
    (
        "{event: 'pay ment'}",
        [
            (
                "trigger.event",
                3,
                '"pay ment" is not valid: an event type is letters, digits and _.:-',
            )
        ],
    ),
    (
        "{segment: contact.vip, where: contact.age > 3}",
        [("trigger.where", 3, "a segment trigger takes no where")],
    ),
    (
        "{api: false}",
        [("trigger.api", 3, "write api: true to start runs through the API, not false")],
    ),
    (
        "{schedule: '0 10 * * 1'}",
        [("trigger.schedule", 3, 'expected a mapping (cron), got text "0 10 * * 1"')],
    ),
    (
        "{date: {attribute: contact.birthday}}",
        [("trigger.date.attribute", 3, 'write the attribute name alone: "birthday"')],
    ),
    (
        "{date: {attribute: d, offset: -3 dayz}}",
        [("trigger.date.offset", 3, '"-3 dayz" is not an offset (e.g. -3d or 2h, at most 3650d)')],
    ),
    (
        "{date: {attribute: d, at: '25:00'}}",
        [("trigger.date.at", 3, '"25:00" is not a time of day (use HH:MM from 00:00 to 23:59)')],
    ),
    (
        "{event: payment, where: steps.offer.seen}",
        [("trigger.where", 3, 'a trigger cannot read "steps.offer.seen": no run has started yet')],
    ),
    (
        "{event: payment, where: payload.amount >}",
        [("trigger.where", 3, "unexpected end of condition — expected a value (at column 17)")],
    ),
]


@pytest.mark.parametrize(("text", "expected"), TOP_LEVEL)
def test_top_level_refusals(text: str, expected: Found) -> None:
    assert problems(text) == expected


@pytest.mark.parametrize(("trigger", "expected"), TRIGGERS)
def test_trigger_refusals(trigger: str, expected: Found) -> None:
    assert problems(_head(trigger=trigger) + "  - exit: x\n") == expected


def test_a_bad_cron_is_refused_with_the_cron_parsers_reason() -> None:
    found = problems(_head(trigger="{schedule: {cron: '0 25 * * *'}}") + "  - exit: x\n")
    assert [(path, line) for path, line, _ in found] == [("trigger.schedule.cron", 3)]
    assert "25" in found[0][2]


STEPS: list[tuple[str, Found]] = [
    (
        "  - sned: {}\n",
        [
            (
                "steps[0].sned",
                5,
                'unknown step "sned" — expected one of '
                "send, survey, wait, branch, split, update, exit",
            )
        ],
    ),
    (
        "  - id: lonely\n",
        [("steps[0]", 5, "a step needs one of send, survey, wait, branch, split, update, exit")],
    ),
    (
        "  - wait 2d\n",
        [("steps[0]", 5, 'a step is a mapping such as {wait: 2d}, got text "wait 2d"')],
    ),
    (
        "  - {wait: 1d, exit: done}\n",
        [("steps[0]", 5, "a step does one thing; this one has wait and exit")],
    ),
    (
        "  - send:\n    category: service\n",
        [
            (
                "steps[0].send",
                5,
                "expected a mapping (category, cascade, priority, content_key, topic), got nothing",
            ),
            ("steps[0].category", 6, '"category" belongs inside send (indent it under "send:")'),
        ],
    ),
    (
        "  - wait: 1d\n    gotto: x\n",
        [("steps[0].gotto", 6, 'unknown key "gotto" — did you mean "goto"?')],
    ),
    (
        "  - id: 1st\n    exit: x\n",
        [
            (
                "steps[0].id",
                5,
                '"1st" is not valid: '
                "an id is letters, digits and _, and does not start with a digit",
            )
        ],
    ),
    ("  - id: exit\n    wait: 1d\n", [("steps[0].id", 5, '"exit" is reserved for goto: exit')]),
    (
        "  - id: a\n    wait: 1d\n  - id: a\n    exit: x\n",
        [("steps[1].id", 7, 'duplicate id "a" — steps[0] has it')],
    ),
    (
        "  - wait: 1d\n    goto: sms_deadlin\n  - id: sms_deadline\n    exit: x\n",
        [("steps[0].goto", 6, 'no step has the id "sms_deadlin" — did you mean "sms_deadline"?')],
    ),
    (
        "  - wait: 1d\n    goto: 3\n",
        [("steps[0].goto", 6, 'expected a step id or "exit", got the number 3')],
    ),
    (
        "  - exit: x\n    goto: exit\n",
        [("steps[0].goto", 6, "an exit step ends the run; remove the goto")],
    ),
    ("  - exit: ''\n", [("steps[0].exit", 5, "expected text, got empty text")]),
    # wait
    (
        "  - wait: 2 dayz\n",
        [("steps[0].wait", 5, '"2 dayz" is not a duration (use e.g. 60s, 5m, 2h, 3d)')],
    ),
    ("  - wait: 0\n", [("steps[0].wait", 5, "0 is not a positive duration")]),
    ("  - wait: [1d]\n", [("steps[0].wait", 5, "expected a duration or a mapping, got a list")]),
    (
        "  - wait:\n      event: login\n      timeout: 2 dayz\n",
        [("steps[0].wait.timeout", 7, '"2 dayz" is not a duration (use e.g. 60s, 5m, 2h, 3d)')],
    ),
    ("  - wait: {event: login}\n", [("steps[0].wait", 5, 'missing "timeout"')]),
    (
        "  - wait: {event: login, timeout: 1d, at: '10:00'}\n",
        [("steps[0].wait.at", 5, 'unknown key "at" — expected one of event, timeout, where')],
    ),
    (
        "  - wait: {until: '10:00', event: login}\n",
        [
            (
                "steps[0].wait",
                5,
                "a wait has one of until, attribute, event, send or reply; "
                "this one has until and event",
            )
        ],
    ),
    (
        "  - wait: {evnt: login, timeout: 1d}\n",
        [
            ("steps[0].wait.evnt", 5, 'unknown key "evnt" — did you mean "event"?'),
            ("steps[0].wait", 5, "a wait has one of until, attribute, event, send or reply"),
        ],
    ),
    (
        "  - wait: {until: '25:00'}\n",
        [
            (
                "steps[0].wait.until",
                5,
                '"25:00" is not a time of day (use HH:MM from 00:00 to 23:59)',
            )
        ],
    ),
    (
        "  - wait: {until: 600}\n",
        [("steps[0].wait.until", 5, '600 is not a time of day (write it quoted, e.g. "10:00")')],
    ),
    (
        "  - wait: {attribute: 'first name'}\n",
        [
            (
                "steps[0].wait.attribute",
                5,
                '"first name" is not an attribute name (letters, digits and _)',
            )
        ],
    ),
    (
        f"  - wait: {{send: offer}}\n  - id: offer\n    send: {SMS}\n",
        [("steps[0].wait.send", 5, 'the send step "offer" must come before this wait')],
    ),
    (
        "  - id: pause\n    wait: 1d\n  - wait: {send: pause}\n",
        [("steps[1].wait.send", 7, '"pause" is not a send step')],
    ),
    (
        f"  - id: offer\n    send: {SMS}\n  - wait: {{send: ofer}}\n",
        [("steps[1].wait.send", 7, 'no send step has the id "ofer" — did you mean "offer"?')],
    ),
    # send: the same rules as POST /v1/notifications
    (
        "  - send:\n      category: marketting\n"
        "      cascade: [{channel: sms, content: {text: hi}}]\n",
        [
            (
                "steps[0].send.category",
                6,
                '"marketting" is not a category — did you mean "marketing"?',
            )
        ],
    ),
    (
        "  - send:\n      category: service\n      priority: 2000\n"
        "      cascade: [{channel: sms, content: {text: hi}}]\n",
        [("steps[0].send.priority", 7, "2000 is out of range (0 to 1000)")],
    ),
    (
        "  - send:\n      category: service\n      cascade:\n        - channel: emial\n"
        "          content: {text: hi}\n",
        [
            (
                "steps[0].send.cascade[0].channel",
                8,
                '"emial" is not a channel — did you mean "email"?',
            )
        ],
    ),
    (
        "  - send:\n      category: service\n      cascade:\n        - channel: sms\n"
        "          content: {text: hi}\n"
        "          until: read\n",
        [
            (
                "steps[0].send.cascade[0].until",
                10,
                '"read" is not a status — expected one of sent, delivered, seen, clicked',
            )
        ],
    ),
    (
        "  - send:\n      category: service\n      cascade:\n        - channel: sms\n"
        "          content: {text: hi}\n"
        "          timeout: 2 dayz\n",
        [
            (
                "steps[0].send.cascade[0].timeout",
                10,
                '"2 dayz" is not a duration (use e.g. 60s, 5m, 2h, 3d)',
            )
        ],
    ),
    (
        "  - send:\n      category: service\n      cascade:\n        - channel: sms\n"
        "          content: {text: hi}\n"
        "        - channel: email\n          content: {text: no subject}\n",
        [("steps[0].send.cascade[1].content", 11, "email content needs `subject`")],
    ),
    (
        "  - send:\n      category: service\n      cascade:\n        - channel: sms\n"
        "          content: {body: hi}\n"
        "        - channel: push\n          content: {}\n",
        [
            ("steps[0].send.cascade[0].content", 9, "sms content needs `text`"),
            ("steps[0].send.cascade[1].content", 11, "push content needs `title` or `text`"),
        ],
    ),
    (
        "  - send:\n      category: service\n      cascade:\n        - channel: sms\n"
        "          content: hi\n",
        [
            (
                "steps[0].send.cascade[0].content",
                9,
                'expected a mapping such as {text: ...}, got text "hi"',
            )
        ],
    ),
    (
        "  - send: {category: service, cascade: []}\n",
        [("steps[0].send.cascade", 5, "a cascade needs at least one step")],
    ),
    (
        "  - send:\n      category: service\n      cascade:\n"
        + "        - {channel: sms, content: {text: hi}}\n" * 11,
        [("steps[0].send.cascade", 7, "a cascade has at most 10 steps")],
    ),
    ("  - send: {category: service}\n", [("steps[0].send", 5, 'missing "cascade"')]),
    (
        "  - send:\n      category: service\n      content_key: a b\n"
        "      cascade: [{channel: sms, content: {text: hi}}]\n",
        [
            (
                "steps[0].send.content_key",
                7,
                '"a b" is not valid: a content key is letters, digits and _.:/-',
            )
        ],
    ),
    (
        "  - send:\n      category: service\n      topic: loans/offer\n"
        "      cascade: [{channel: sms, content: {text: hi}}]\n",
        [
            (
                "steps[0].send.topic",
                7,
                '"loans/offer" is not valid: a topic is letters, digits and _.:-',
            )
        ],
    ),
    # branch
    (
        "  - branch:\n      - else: exit\n      - when: contact.vip\n        goto: exit\n",
        [("steps[0].branch[0].else", 6, "else must be the last case")],
    ),
    (
        "  - branch: [{else: exit}]\n",
        [("steps[0].branch", 5, "a branch needs at least one case with when")],
    ),
    ("  - branch: [{when: contact.vip}]\n", [("steps[0].branch[0]", 5, 'missing "goto"')]),
    ("  - branch: []\n", [("steps[0].branch", 5, "expected a list of cases, got an empty list")]),
    (
        "  - branch:\n      - when: steps.ask.seen and\n        goto: exit\n",
        [
            (
                "steps[0].branch[0].when",
                6,
                "unexpected end of condition — expected a value (at column 19)",
            )
        ],
    ),
    (
        "  - branch:\n      - when: steps.viber_ofer.seen\n        goto: exit\n"
        "  - id: viber_offer\n    exit: x\n",
        [
            (
                "steps[0].branch[0].when",
                6,
                '"steps.viber_ofer.seen": no step has the id "viber_ofer"'
                ' — did you mean "viber_offer"?',
            )
        ],
    ),
    (
        "  - branch:\n      - when: steps\n        goto: exit\n",
        [("steps[0].branch[0].when", 6, '"steps" needs a step id, as in steps.ID.seen')],
    ),
    (
        "  - wait: {event: login, timeout: 1d, where: steps.nope.received}\n",
        [("steps[0].wait.where", 5, '"steps.nope.received": no step has the id "nope"')],
    ),
    # split
    (
        "  - split:\n      - {variant: a, weight: 1}\n      - {variant: a, weight: 1}\n",
        [
            ("steps[0].split[0].variant", 6, '"a" is repeated'),
            ("steps[0].split[1].variant", 7, '"a" is repeated'),
        ],
    ),
    (
        "  - split:\n      - {variant: a, weight: 0}\n      - {variant: b, weight: 0}\n",
        [("steps[0].split", 5, "a split needs at least one variant with a weight above 0")],
    ),
    (
        "  - split: [{variant: a, weight: -1}]\n",
        [("steps[0].split[0].weight", 5, "-1 is out of range (0 to 1000000)")],
    ),
    (
        "  - split: [{variant: a, weight: 1.5}]\n",
        [("steps[0].split[0].weight", 5, "expected a whole number, got the number 1.5")],
    ),
    (
        "  - split: [{variant: a b, weight: 1}]\n",
        [
            (
                "steps[0].split[0].variant",
                5,
                '"a b" is not valid: a variant name is letters, digits and _.-',
            )
        ],
    ),
    (
        "  - split: [{variant: a, weight: 1, goto: nowhere}]\n",
        [("steps[0].split[0].goto", 5, 'no step has the id "nowhere"')],
    ),
    # update
    (
        "  - update: {attributes: {}}\n",
        [("steps[0].update.attributes", 5, "needs at least one attribute to set")],
    ),
    (
        "  - update:\n      attributes:\n        first name: Anna\n",
        [('steps[0].update.attributes["first name"]', 7, '"first name" is not an attribute name')],
    ),
    (
        "  - update: {promo: 1}\n",
        [
            ("steps[0].update.promo", 5, 'unknown key "promo" — expected one of attributes'),
            ("steps[0].update", 5, 'missing "attributes"'),
        ],
    ),
]


@pytest.mark.parametrize(("steps", "expected"), STEPS)
def test_step_refusals(steps: str, expected: Found) -> None:
    assert problems(HEAD + steps) == expected


def test_all_problems_are_reported_in_document_order() -> None:
    text = (
        "id: j\n"
        "name: J\n"
        "trigger: {evnt: payment}\n"
        "steps:\n"
        "  - wait: 2 dayz\n"
        "  - sned: {}\n"
        "  - wait: 1d\n"
        "    goto: nowhere\n"
    )
    assert [(path, line) for path, line, _ in problems(text)] == [
        ("trigger.evnt", 3),
        ("trigger", 3),
        ("steps[0].wait", 5),
        ("steps[1].sned", 6),
        ("steps[2].goto", 8),
    ]


def test_problems_are_capped() -> None:
    text = HEAD + "  - wait: 2 dayz\n" * 60
    with pytest.raises(JourneyError) as info:
        load_definition(text, filename="many.yaml")
    error = info.value
    assert len(error.problems) == MAX_PROBLEMS
    assert error.truncated
    assert error.filename == "many.yaml"
    assert str(error).splitlines()[-1] == "many.yaml: (only the first 50 problems are shown)"


# Loops -------------------------------------------------------------------------------------

ASK = f"  - id: ask\n    send: {SMS}\n"
NOT_ALWAYS = (
    "without a wait that always takes time (a wait for a date or for a send can go on at once)"
    " — a run would spin forever"
)


@pytest.mark.parametrize(
    ("steps", "expected"),
    [
        pytest.param(
            ASK + "  - branch:\n      - when: steps.ask.seen\n        goto: ask\n",
            [
                (
                    "steps[1].branch[0].goto",
                    9,
                    'loops back to "ask" without a wait — a run would spin forever',
                )
            ],
            id="branch-back-to-a-send",
        ),
        pytest.param(
            ASK
            + "  - update: {attributes: {n: 1}}\n"
            + "  - branch:\n      - when: contact.vip\n        goto: exit\n      - else: ask\n",
            [
                (
                    "steps[2].branch[1].else",
                    11,
                    'loops back to "ask" without a wait — a run would spin forever',
                )
            ],
            id="else-back",
        ),
        pytest.param(
            "  - id: a\n    update: {attributes: {n: 1}}\n    goto: a\n",
            [("steps[0].goto", 7, 'loops back to "a" without a wait — a run would spin forever')],
            id="goto-itself",
        ),
        pytest.param(
            "  - id: s\n    split:\n      - {variant: a, weight: 1, goto: s}\n"
            "      - {variant: b, weight: 1}\n",
            [
                (
                    "steps[0].split[0].goto",
                    7,
                    'loops back to "s" without a wait — a run would spin forever',
                )
            ],
            id="split-back",
        ),
        pytest.param(
            "  - wait: 1d\n    goto: c\n  - id: b\n    update: {attributes: {n: 1}}\n"
            "  - id: c\n    update: {attributes: {n: 2}}\n    goto: b\n",
            [("steps[2].goto", 11, 'loops back to "b" without a wait — a run would spin forever')],
            id="goto-back-over-the-list",
        ),
        pytest.param(
            ASK + "  - wait: {send: ask, timeout: 1d}\n  - branch:\n      - when: steps.ask.seen\n"
            "        goto: ask\n",
            [
                (
                    "steps[2].branch[0].goto",
                    10,
                    'loops back to "ask" ' + NOT_ALWAYS,
                )
            ],
            id="a-send-wait-does-not-break-a-loop",
        ),
        pytest.param(
            "  - id: again\n    wait: {attribute: renewal_date, offset: -1d}\n"
            f"  - send: {SMS}\n    goto: again\n",
            [
                (
                    "steps[1].goto",
                    8,
                    'loops back to "again" ' + NOT_ALWAYS,
                )
            ],
            id="a-date-wait-does-not-break-a-loop",
        ),
    ],
)
def test_loops_without_a_wait_are_refused(steps: str, expected: Found) -> None:
    assert problems(HEAD + steps) == expected


@pytest.mark.parametrize(
    "steps",
    [
        pytest.param(
            ASK + "  - wait: 1d\n  - branch:\n      - when: steps.ask.seen\n        goto: ask\n",
            id="duration",
        ),
        pytest.param(ASK + "  - wait: {until: '10:00'}\n    goto: ask\n", id="time-of-day"),
        pytest.param(ASK + "  - wait: {event: reply, timeout: 1h}\n    goto: ask\n", id="event"),
        pytest.param("  - id: tick\n    wait: 1d\n    goto: tick\n", id="a-wait-looping-on-itself"),
        pytest.param(
            "  - id: s\n    split:\n      - {variant: a, weight: 1, goto: pause}\n"
            "      - {variant: b, weight: 1}\n"
            "  - update: {attributes: {n: 1}}\n  - id: pause\n    wait: 1h\n    goto: s\n",
            id="split-through-a-wait",
        ),
        pytest.param(
            "  - wait: 1d\n    goto: c\n  - id: b\n    exit: done\n  - id: c\n"
            "    update: {attributes: {n: 1}}\n    goto: b\n",
            id="gotos-backwards-without-a-loop",
        ),
    ],
)
def test_loops_through_a_wait_are_fine(steps: str) -> None:
    assert load_definition(HEAD + steps).steps


# Examples ----------------------------------------------------------------------------------

EXAMPLES = sorted((ROOT / "examples" / "journeys").glob("*.yaml"))


def test_the_examples_folder_holds_the_seed_scenarios() -> None:
    assert {path.stem for path in EXAMPLES} >= {
        "credit-card-offer",
        "tariff-change",
        "reactivation",
        "onboarding",
        "post-transaction",
        "suspicious-operation",
        "loan-offer",
    }


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda path: path.name)
def test_examples_load(path: Path) -> None:
    definition = load_definition(path.read_text(encoding="utf-8"), filename=path.name)
    assert definition.id == path.stem
    assert definition.steps
    assert any(isinstance(step, SendStep) for step in definition.steps)
