"""Contact pressure policy: caps, priorities, quiet hours, de-duplication, relevance."""

from kaskad.domain.policy.document import PolicyError, load_policy, parse_policy
from kaskad.domain.policy.evaluate import (
    Candidate,
    Facts,
    Happened,
    Move,
    Planned,
    Sent,
    Verdict,
    VerdictKind,
    evaluate,
    needs_history,
    outranks,
    replan,
)
from kaskad.domain.policy.rules import (
    DEFAULT_POLICY,
    CapRule,
    Policy,
    QuietHours,
    RelevanceRule,
    Selector,
)

__all__ = [
    "DEFAULT_POLICY",
    "Candidate",
    "CapRule",
    "Facts",
    "Happened",
    "Move",
    "Planned",
    "Policy",
    "PolicyError",
    "QuietHours",
    "RelevanceRule",
    "Selector",
    "Sent",
    "Verdict",
    "VerdictKind",
    "evaluate",
    "load_policy",
    "needs_history",
    "outranks",
    "parse_policy",
    "replan",
]
