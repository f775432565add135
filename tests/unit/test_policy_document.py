"""Reading a policy document: what each form means, and every problem by path and line."""

from __future__ import annotations

from datetime import time, timedelta

import pytest

from kaskad.domain.policy import (
    DEFAULT_POLICY,
    CapRule,
    Policy,
    PolicyError,
    QuietHours,
    RelevanceRule,
    Selector,
    load_policy,
    parse_policy,
)
from kaskad.domain.policy.rules import CATEGORY_ORDER
from kaskad.domain.vocabulary import Category, Channel

DAY = timedelta(days=1)
WEEK = timedelta(weeks=1)
MARKETING = Category.MARKETING
SERVICE = Category.SERVICE
SECURITY = Category.SECURITY
TRANSACTIONAL = Category.TRANSACTIONAL
EVENING = QuietHours(time(21, 0), time(9, 0))


def test_an_empty_mapping_is_the_default_policy() -> None:
    assert load_policy("{}") == DEFAULT_POLICY
    assert load_policy("caps: {}\n") == DEFAULT_POLICY


@pytest.mark.parametrize(
    ("text", "caps"),
    [
        pytest.param(
            "caps:\n  marketing: 2/week\n",
            (CapRule(2, WEEK, MARKETING),),
            id="category",
        ),
        pytest.param(
            "caps:\n  all: [2/day, 5/week]\n",
            (CapRule(2, DAY), CapRule(5, WEEK)),
            id="all-with-two-windows",
        ),
        pytest.param(
            "caps:\n  sms: 3/day\n",
            (CapRule(3, DAY, channel=Channel.SMS),),
            id="channel",
        ),
        pytest.param(
            "caps:\n  service: 1/hour\n  push: 10/month\n",
            (
                CapRule(1, timedelta(hours=1), SERVICE),
                CapRule(10, timedelta(days=30), channel=Channel.PUSH),
            ),
            id="hour-and-month",
        ),
        pytest.param(
            "caps:\n  marketing: 3/12h\n  all: 1 / 90m\n",
            (CapRule(3, timedelta(hours=12), MARKETING), CapRule(1, timedelta(minutes=90))),
            id="a-duration-as-the-window",
        ),
        pytest.param(
            '{"caps": {"marketing": "2/week", "all": ["2/day", "5/week"]}}',
            (CapRule(2, WEEK, MARKETING), CapRule(2, DAY), CapRule(5, WEEK)),
            id="json",
        ),
        pytest.param(
            "caps:\n"
            "  - {limit: 2/week, category: marketing, topic: loan_offer, name: loans}\n"
            "  - {limit: 1/day, channel: viber, journey: welcome}\n"
            "  - {limit: 4/day, category: all}\n",
            (
                CapRule(2, WEEK, MARKETING, topic="loan_offer", name="loans"),
                CapRule(1, DAY, channel=Channel.VIBER, journey="welcome"),
                CapRule(4, DAY),
            ),
            id="list-form-with-selectors-and-names",
        ),
    ],
)
def test_caps(text: str, caps: tuple[CapRule, ...]) -> None:
    assert tuple(load_policy(text).caps) == caps


def test_caps_read_as_the_decisions_quote_them() -> None:
    policy = load_policy("caps:\n  - {limit: 2/week, category: marketing, name: loans}\n")
    assert policy.caps[0].label == "cap 'loans' 2/week"
    assert load_policy("caps:\n  sms: 3/12h\n").caps[0].label == "all sms cap 3/12h"


@pytest.mark.parametrize(
    ("text", "quiet"),
    [
        pytest.param("quiet_hours: {}\n", {MARKETING: EVENING}, id="defaults-kept"),
        pytest.param(
            'quiet_hours: {marketing: "22:00-08:30"}\n',
            {MARKETING: QuietHours(time(22, 0), time(8, 30))},
            id="range",
        ),
        pytest.param(
            'quiet_hours: {service: "13:00 – 14:00"}\n',
            {MARKETING: EVENING, SERVICE: QuietHours(time(13, 0), time(14, 0))},
            id="en-dash-and-spaces-other-categories-keep-defaults",
        ),
        pytest.param(
            "quiet_hours:\n  service: {from: '23:00', to: '7:00'}\n",
            {MARKETING: EVENING, SERVICE: QuietHours(time(23, 0), time(7, 0))},
            id="from-to",
        ),
        pytest.param("quiet_hours: {marketing: never}\n", {}, id="never"),
        pytest.param(
            "quiet_hours: {security: never}\n", {MARKETING: EVENING}, id="security-never-is-fine"
        ),
        pytest.param(
            '{"quiet_hours": {"marketing": "01:00-03:30"}}',
            {MARKETING: QuietHours(time(1, 0), time(3, 30))},
            id="json",
        ),
    ],
)
def test_quiet_hours(text: str, quiet: dict[Category, QuietHours]) -> None:
    assert dict(load_policy(text).quiet_hours) == quiet


def test_every_other_setting() -> None:
    policy = load_policy(
        "exempt: [security]\n"
        "dedup_window: 12h\n"
        "validity: {marketing: 2d, security: 10m}\n"
        "order: [security, transactional, marketing, service]\n"
        "default_timezone: Europe/Kiev\n"
        "relevance:\n"
        "  - {after: loan_repaid, suppress: {topic: loan_offer}, for: 30d}\n"
        "  - after: complaint\n"
        "    suppress: {category: marketing}\n"
        "    for: 1w\n"
        "  - {after: closed, suppress: {category: marketing, topic: card}, for: 90d}\n"
    )
    assert policy == Policy(
        exempt=frozenset({SECURITY}),
        dedup_window=timedelta(hours=12),
        validity={
            SECURITY: timedelta(minutes=10),
            TRANSACTIONAL: DAY,
            SERVICE: timedelta(days=3),
            MARKETING: timedelta(days=2),
        },
        order=(SECURITY, TRANSACTIONAL, MARKETING, SERVICE),
        default_timezone="Europe/Kyiv",  # the old name is renamed
        relevance=(
            RelevanceRule("loan_repaid", Selector(topic="loan_offer"), timedelta(days=30)),
            RelevanceRule("complaint", Selector(category=MARKETING), WEEK),
            RelevanceRule("closed", Selector(MARKETING, "card"), timedelta(days=90)),
        ),
    )
    assert policy.rank(MARKETING) > policy.rank(SERVICE)
    assert policy.horizon == timedelta(days=90)


def test_nothing_exempt() -> None:
    assert load_policy("exempt: []\n").exempt == frozenset()


def test_the_default_order() -> None:
    assert tuple(load_policy("{}").order) == CATEGORY_ORDER
    assert [DEFAULT_POLICY.rank(c) for c in CATEGORY_ORDER] == [4, 3, 2, 1]


def test_parse_policy_takes_plain_data() -> None:
    policy = parse_policy({"caps": {"marketing": "2/week"}})
    assert tuple(policy.caps) == (CapRule(2, WEEK, MARKETING),)
    with pytest.raises(PolicyError) as caught:
        parse_policy({"caps": {"marketing": "2/wek"}})
    assert str(caught.value).startswith('caps.marketing: "2/wek" is not a limit')


# Problems, by path and line -------------------------------------------------------------------


WINDOW_WORDS = "the window is hour, day, week, month or a duration such as 12h"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        pytest.param(
            "caps:\n  marketing: 2/wek\n",
            f'caps.marketing (line 2): "2/wek" is not a limit: {WINDOW_WORDS}'
            ' — did you mean "week"?',
            id="window-misspelt",
        ),
        pytest.param(
            "caps:\n  all: [2/day, 5/Week]\n",
            f'caps.all[1] (line 2): "5/Week" is not a limit: {WINDOW_WORDS} — did you mean "week"?',
            id="window-in-a-list",
        ),
        pytest.param(
            "caps:\n  marketing: 0/day\n",
            "caps.marketing (line 2): 0 is out of range (1 to 10000)",
            id="zero-limit",
        ),
        pytest.param(
            "caps:\n  marketing: 10001/day\n",
            "caps.marketing (line 2): 10001 is out of range (1 to 10000)",
            id="huge-limit",
        ),
        pytest.param(
            "caps:\n  marketing: 2\n",
            "caps.marketing (line 2): the number 2 is not a limit (write e.g. 2/week, 5/day "
            "or 3/12h)",
            id="no-window",
        ),
        pytest.param(
            "caps:\n  marketing: 2/0h\n",
            'caps.marketing (line 2): "0h" is not a positive duration',
            id="zero-window",
        ),
        pytest.param(
            "caps:\n  marketng: 2/week\n",
            'caps.marketng (line 2): "marketng" is not a category, a channel or all'
            ' — did you mean "marketing"?',
            id="shorthand-key-misspelt",
        ),
        pytest.param(
            "caps:\n  - {limit: 2/day, category: marketting}\n",
            'caps[0].category (line 2): "marketting" is not a category — did you mean "marketing"?',
            id="list-category-misspelt",
        ),
        pytest.param(
            "caps:\n  - {limit: 2/day, chanel: sms}\n",
            'caps[0].chanel (line 2): unknown key "chanel" — did you mean "channel"?',
            id="list-unknown-key",
        ),
        pytest.param(
            "caps:\n  - {category: marketing}\n",
            'caps[0] (line 2): missing "limit"',
            id="list-without-limit",
        ),
        pytest.param(
            "caps:\n  - {limit: 2/day, topic: loan offer}\n",
            'caps[0].topic (line 2): "loan offer" is not valid: '
            "a topic is letters, digits and _.:-",
            id="bad-topic",
        ),
        pytest.param(
            "caps: []\n",
            "caps (line 1): expected a list of cap rules, got an empty list",
            id="empty-cap-list",
        ),
        pytest.param(
            "quiet_hour: {}\n",
            'quiet_hour (line 1): unknown key "quiet_hour" — did you mean "quiet_hours"?',
            id="top-level-key-misspelt",
        ),
        pytest.param(
            '{"caps": {"marketing": "2/week"},\n "quiet_hourz": {}}',
            'quiet_hourz (line 2): unknown key "quiet_hourz" — did you mean "quiet_hours"?',
            id="json-top-level-key-misspelt",
        ),
        pytest.param(
            'quiet_hours:\n  marketing: "25:00-09:00"\n',
            'quiet_hours.marketing (line 2): "25:00" is not a time of day '
            "(use HH:MM from 00:00 to 23:59)",
            id="hour-out-of-range",
        ),
        pytest.param(
            "quiet_hours:\n  marketing: {from: '21:00', to: '9:75'}\n",
            'quiet_hours.marketing.to (line 2): "9:75" is not a time of day '
            "(use HH:MM from 00:00 to 23:59)",
            id="minute-out-of-range",
        ),
        pytest.param(
            'quiet_hours:\n  marketing: "21:00 to 09:00"\n',
            'quiet_hours.marketing (line 2): text "21:00 to 09:00" is not quiet hours '
            '(write e.g. "21:00-09:00")',
            id="not-a-range",
        ),
        pytest.param(
            "quiet_hours:\n  marketing: {from: '21:00'}\n",
            'quiet_hours.marketing (line 2): missing "to"',
            id="from-without-to",
        ),
        pytest.param(
            'quiet_hours:\n  marketing: "09:00-09:00"\n',
            "quiet_hours.marketing (line 2): quiet hours that start when they end are empty; "
            "write never instead",
            id="empty-range",
        ),
        pytest.param(
            'quiet_hours:\n  security: "21:00-09:00"\n',
            "quiet_hours.security (line 2): security messages are never held back by quiet hours",
            id="security-refused",
        ),
        pytest.param(
            'quiet_hours:\n  promo: "21:00-09:00"\n',
            'quiet_hours.promo (line 2): "promo" is not a category — expected one of '
            "security, transactional, service, marketing",
            id="quiet-hours-of-no-category",
        ),
        pytest.param(
            "validity:\n  marketing: 0\n",
            "validity.marketing (line 2): 0 is not a positive duration",
            id="validity-zero",
        ),
        pytest.param(
            "order: [security, transactional, marketing]\n",
            "order (line 1): list every category exactly once, most important first",
            id="order-missing-one",
        ),
        pytest.param(
            "order: [security, transactional, service, marketing, marketing]\n",
            "order (line 1): list every category exactly once, most important first",
            id="order-twice",
        ),
        pytest.param(
            "exempt: [security, transactionl]\n",
            'exempt[1] (line 1): "transactionl" is not a category — did you mean "transactional"?',
            id="exempt-misspelt",
        ),
        pytest.param(
            "default_timezone: Mars/Olympus\n",
            'default_timezone (line 1): "Mars/Olympus" is not an IANA time zone (e.g. Europe/Kyiv)',
            id="unknown-zone",
        ),
        pytest.param(
            "relevance:\n  - {after: loan_repaid, suppress: {}, for: 30d}\n",
            "relevance[0].suppress (line 2): name a category, a topic or both",
            id="relevance-selects-nothing",
        ),
        pytest.param(
            "relevance:\n  - {after: loan_repaid, suppress: {topic: loan_offer}}\n",
            'relevance[0] (line 2): missing "for"',
            id="relevance-without-duration",
        ),
        pytest.param(
            "relevance:\n  - after: loan repaid\n    suppress: {topic: loan_offer}\n    for: 30d\n",
            'relevance[0].after (line 2): "loan repaid" is not valid: an event type is '
            "letters, digits and _.:-",
            id="relevance-bad-event",
        ),
        pytest.param(
            "relevance:\n  - after: x\n    suppress: {categroy: marketing}\n    for: 30d\n",
            'relevance[0].suppress.categroy (line 3): unknown key "categroy" — did you mean '
            '"category"?',
            id="relevance-selector-key-misspelt",
        ),
        pytest.param(
            "caps:\n  marketing: 2/week\n  marketing: 3/week\n",
            'caps.marketing (line 3): duplicate key "marketing" (first on line 2)',
            id="duplicate-key",
        ),
        pytest.param(
            "- 1\n- 2\n",
            "policy (line 1): expected a mapping (caps, exempt, quiet_hours, dedup_window, "
            "relevance, validity, order, default_timezone), got a list",
            id="not-a-mapping",
        ),
        pytest.param("", "policy: the document is empty", id="empty-document"),
    ],
)
def test_problems(text: str, message: str) -> None:
    with pytest.raises(PolicyError) as caught:
        load_policy(text)
    assert str(caught.value) == message


def test_every_problem_is_reported_in_the_order_of_the_document() -> None:
    text = "caps:\n  marketing: 2/wek\nquiet_hours:\n  security: '21:00-09:00'\ndedup_window: 0\n"
    with pytest.raises(PolicyError) as caught:
        load_policy(text, filename="policy.yaml")
    lines = str(caught.value).splitlines()
    assert [line.split(": ", 2)[1] for line in lines] == [
        "caps.marketing (line 2)",
        "quiet_hours.security (line 4)",
        "dedup_window (line 5)",
    ]
    assert all(line.startswith("policy.yaml: ") for line in lines)
    assert [(p.path, p.line) for p in caught.value.problems] == [
        ("caps.marketing", 2),
        ("quiet_hours.security", 4),
        ("dedup_window", 5),
    ]
