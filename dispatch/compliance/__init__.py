"""Dial-time compliance: calling hours in the callee's zone, do-not-call lists,
frequency caps and the platform's refusals. Pure policies (time is a parameter,
epoch seconds); I/O only in the loaders. Not legal advice.

Typical use at dial time::

    settings = ComplianceSettings(campaign="c1", fallback_zone=None)
    admission = default_admission([internal_list, *file_lists])
    decision = admission.decide(DialContext(now_s=clock.now(), phone=record.phone,
                                            record_id=record.id, settings=settings,
                                            attempts=store, fields=record.metadata))
"""

from __future__ import annotations

from collections.abc import Sequence

from dispatch.compliance import reasons
from dispatch.compliance.caps import CampaignCapPolicy, PhoneCapPolicy
from dispatch.compliance.context import AttemptLog, ComplianceSettings, DialContext
from dispatch.compliance.decision import Admission, Decision, Policy, Verdict
from dispatch.compliance.dnc import (
    DncPolicy,
    InternalSuppressionList,
    MemorySuppressionList,
    StaticSuppressionList,
    Suppression,
    SuppressionList,
)
from dispatch.compliance.dnc_load import (
    DncSourceError,
    LoadedList,
    load_suppression_file,
    load_suppression_sql,
    load_suppression_sql_async,
)
from dispatch.compliance.hours import CallingHoursPolicy
from dispatch.compliance.opening import is_open, next_opening
from dispatch.compliance.optout import is_opt_out
from dispatch.compliance.platform import refusal_decision
from dispatch.compliance.preview import PreviewSummary
from dispatch.compliance.refusals import REFUSAL_REASONS, RefusalKind, classify_refusal
from dispatch.compliance.states import StateRule, StateRules, load_state_rules
from dispatch.compliance.window import CallingHours, WindowConfigError

__all__ = [
    "REFUSAL_REASONS", "Admission", "AttemptLog", "CallingHours", "CallingHoursPolicy",
    "CampaignCapPolicy", "ComplianceSettings", "Decision", "DialContext", "DncPolicy",
    "DncSourceError", "InternalSuppressionList", "LoadedList", "MemorySuppressionList",
    "PhoneCapPolicy", "Policy", "PreviewSummary", "RefusalKind", "StateRule", "StateRules",
    "StaticSuppressionList", "Suppression", "SuppressionList", "Verdict", "WindowConfigError",
    "classify_refusal", "default_admission", "is_open", "is_opt_out", "load_state_rules",
    "load_suppression_file", "load_suppression_sql", "load_suppression_sql_async",
    "next_opening", "reasons", "refusal_decision",
]


def default_admission(dnc_lists: Sequence[SuppressionList] = ()) -> Admission:
    """The standard order: do-not-call (a skip beats a deferral: a suppressed number
    is never woken up again), calling hours, then the caps."""
    return Admission([DncPolicy(dnc_lists), CallingHoursPolicy(), PhoneCapPolicy(),
                      CampaignCapPolicy()])
