"""Conditions: Ready summarises the others, and lastTransitionTime moves only when a status flips."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from typing import Any

from payguard.conditions import (
    MAX_MESSAGE_LENGTH,
    Condition,
    ConditionType,
    Reason,
    invalid_spec_condition,
    merge_conditions,
    ready_condition,
)

EARLIER = datetime(2024, 1, 1, 8, 0, 0, tzinfo=UTC)
EARLIER_TEXT = "2024-01-01T08:00:00Z"
NOW = datetime(2024, 6, 1, 12, 30, 45, tzinfo=UTC)
NOW_TEXT = "2024-06-01T12:30:45Z"


# --- builders --------------------------------------------------------------------------------------------


def holds(kind: str, reason: str = Reason.APPLIED, message: str = "ok") -> Condition:
    return Condition(kind, True, reason, message)


def fails(kind: str, reason: str, message: str = "broken") -> Condition:
    return Condition(kind, False, reason, message)


def stored(kind: str, status: str, *, reason: str = "Old", message: str = "old") -> dict[str, Any]:
    return {
        "type": kind,
        "status": status,
        "reason": reason,
        "message": message,
        "observedGeneration": 1,
        "lastTransitionTime": EARLIER_TEXT,
    }


def by_type(conditions: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {c["type"]: c for c in conditions}


ALL_HOLD = (
    holds(ConditionType.MTLS_STRICT, Reason.STRICT),
    holds(ConditionType.AUTHORIZATION_ENFORCED),
    holds(ConditionType.NETWORK_ISOLATED),
    holds(ConditionType.IN_SYNC, Reason.NO_DRIFT),
    holds(ConditionType.LEAST_PRIVILEGE, Reason.LEAST_PRIVILEGE),
)


# --- ready_condition -------------------------------------------------------------------------------------


def test_ready_is_true_only_when_every_condition_holds() -> None:
    assert ready_condition(ALL_HOLD) == Condition(
        ConditionType.READY, True, Reason.RECONCILED, "Every zero-trust control holds"
    )


def test_ready_is_true_when_there_is_nothing_to_check() -> None:
    assert ready_condition(()).status is True


def test_one_failing_condition_makes_ready_false_and_is_named_in_the_message() -> None:
    conditions = (
        *ALL_HOLD[:-1],
        fails(ConditionType.LEAST_PRIVILEGE, Reason.PRIVILEGE_WIDENED, "np/x widens"),
    )
    ready = ready_condition(conditions)
    assert ready == Condition(ConditionType.READY, False, Reason.NOT_READY, "LeastPrivilege: np/x widens")


def test_ready_message_names_failing_types_most_urgent_first() -> None:
    ready = ready_condition(
        (
            fails(ConditionType.LEAST_PRIVILEGE, Reason.PRIVILEGE_WIDENED, "widened"),
            holds(ConditionType.AUTHORIZATION_ENFORCED),
            fails(ConditionType.MTLS_STRICT, Reason.NOT_STRICT, "permissive"),
            fails(ConditionType.IN_SYNC, Reason.DRIFT_DETECTED, "drifted"),
        )
    )
    assert ready.status is False
    assert ready.message == "InSync: drifted; MTLSStrict: permissive; LeastPrivilege: widened"


def test_unknown_failing_types_are_named_after_the_known_ones() -> None:
    ready = ready_condition(
        (
            fails("SomethingNew", "Broken", "new check failed"),
            fails(ConditionType.NETWORK_ISOLATED, "X", "gone"),
        )
    )
    assert ready.message == "NetworkIsolated: gone; SomethingNew: new check failed"


def test_name_conflict_outranks_every_other_reason() -> None:
    ready = ready_condition(
        (
            fails(ConditionType.IN_SYNC, Reason.APPLY_FAILED),
            fails(ConditionType.AUTHORIZATION_ENFORCED, Reason.AUDIT_MODE),
            fails(ConditionType.NETWORK_ISOLATED, Reason.NAME_CONFLICT),
        )
    )
    assert ready.reason == Reason.NAME_CONFLICT


def test_apply_failed_outranks_audit_mode() -> None:
    ready = ready_condition(
        (
            fails(ConditionType.AUTHORIZATION_ENFORCED, Reason.AUDIT_MODE),
            fails(ConditionType.NETWORK_ISOLATED, Reason.APPLY_FAILED),
        )
    )
    assert ready.reason == Reason.APPLY_FAILED


def test_audit_mode_outranks_ordinary_failures() -> None:
    ready = ready_condition(
        (
            fails(ConditionType.MTLS_STRICT, Reason.NOT_STRICT),
            fails(ConditionType.AUTHORIZATION_ENFORCED, Reason.AUDIT_MODE),
        )
    )
    assert ready.reason == Reason.AUDIT_MODE


def test_ordinary_failures_make_ready_not_ready() -> None:
    ready = ready_condition(
        (
            fails(ConditionType.MTLS_STRICT, Reason.NOT_STRICT),
            fails(ConditionType.IN_SYNC, Reason.DRIFT_DETECTED),
        )
    )
    assert ready.reason == Reason.NOT_READY


def test_reasons_of_conditions_that_hold_do_not_decide_ready() -> None:
    ready = ready_condition(
        (holds(ConditionType.NETWORK_ISOLATED, Reason.NAME_CONFLICT), fails(ConditionType.IN_SYNC, "X"))
    )
    assert ready.reason == Reason.NOT_READY


def test_invalid_spec_condition_is_ready_false_with_the_message() -> None:
    assert invalid_spec_condition("spec.workloads[0].ports: is required") == Condition(
        ConditionType.READY, False, Reason.INVALID_SPEC, "spec.workloads[0].ports: is required"
    )


# --- merge_conditions ------------------------------------------------------------------------------------


def test_new_conditions_get_the_current_time_and_generation() -> None:
    merged = merge_conditions(
        [], [holds(ConditionType.IN_SYNC, Reason.NO_DRIFT, "fine")], generation=7, now=NOW
    )
    assert merged == [
        {
            "type": "InSync",
            "status": "True",
            "reason": "NoDrift",
            "message": "fine",
            "observedGeneration": 7,
            "lastTransitionTime": NOW_TEXT,
        }
    ]


def test_transition_time_is_kept_when_status_is_unchanged_even_if_reason_and_message_change() -> None:
    previous = [stored(ConditionType.IN_SYNC, "False", reason=Reason.DRIFT_DETECTED, message="a")]
    merged = merge_conditions(
        previous, [fails(ConditionType.IN_SYNC, Reason.APPLY_FAILED, "b")], generation=3, now=NOW
    )
    assert merged == [
        {
            "type": "InSync",
            "status": "False",
            "reason": "ApplyFailed",
            "message": "b",
            "observedGeneration": 3,
            "lastTransitionTime": EARLIER_TEXT,
        }
    ]


def test_transition_time_moves_when_status_flips() -> None:
    previous = [stored(ConditionType.IN_SYNC, "False"), stored(ConditionType.MTLS_STRICT, "True")]
    merged = by_type(
        merge_conditions(
            previous,
            [holds(ConditionType.IN_SYNC), fails(ConditionType.MTLS_STRICT, Reason.NOT_STRICT)],
            generation=2,
            now=NOW,
        )
    )
    assert merged["InSync"]["lastTransitionTime"] == NOW_TEXT
    assert merged["InSync"]["status"] == "True"
    assert merged["MTLSStrict"]["lastTransitionTime"] == NOW_TEXT
    assert merged["MTLSStrict"]["status"] == "False"


def test_observed_generation_is_the_current_one_even_when_nothing_else_changes() -> None:
    previous = [stored(ConditionType.IN_SYNC, "True", reason=Reason.NO_DRIFT, message="ok")]
    merged = merge_conditions(
        previous, [holds(ConditionType.IN_SYNC, Reason.NO_DRIFT)], generation=9, now=NOW
    )
    assert merged[0]["observedGeneration"] == 9
    assert merged[0]["lastTransitionTime"] == EARLIER_TEXT


def test_conditions_of_types_not_in_this_pass_are_kept_as_they_were() -> None:
    certificates = stored("CertificatesReady", "False", reason="Expired", message="cert expired")
    merged = by_type(merge_conditions([certificates], [holds(ConditionType.IN_SYNC)], generation=4, now=NOW))
    assert set(merged) == {"CertificatesReady", "InSync"}
    assert merged["CertificatesReady"] == certificates


def test_kept_conditions_are_copies_not_the_previous_objects() -> None:
    certificates = stored("CertificatesReady", "True")
    merged = merge_conditions([certificates], [], generation=4, now=NOW)
    merged[0]["status"] = "False"
    assert certificates["status"] == "True"


def test_ready_comes_first_and_the_rest_in_type_order() -> None:
    merged = merge_conditions(
        [stored("CertificatesReady", "True")],
        [*ALL_HOLD, ready_condition(ALL_HOLD)],
        generation=1,
        now=NOW,
    )
    assert [c["type"] for c in merged] == [
        "Ready",
        "AuthorizationEnforced",
        "CertificatesReady",
        "InSync",
        "LeastPrivilege",
        "MTLSStrict",
        "NetworkIsolated",
    ]


def test_long_messages_are_truncated_to_the_maximum_length() -> None:
    long = "x" * (MAX_MESSAGE_LENGTH + 100)
    merged = merge_conditions(
        [], [fails(ConditionType.IN_SYNC, Reason.DRIFT_DETECTED, long)], generation=1, now=NOW
    )
    assert merged[0]["message"] == "x" * MAX_MESSAGE_LENGTH


def test_message_of_exactly_the_maximum_length_is_kept_whole() -> None:
    exact = "y" * MAX_MESSAGE_LENGTH
    merged = merge_conditions([], [holds(ConditionType.IN_SYNC, message=exact)], generation=1, now=NOW)
    assert merged[0]["message"] == exact


def test_transition_time_is_written_in_seconds_with_a_z_suffix() -> None:
    merged = merge_conditions(
        [], [holds(ConditionType.IN_SYNC)], generation=1, now=NOW + timedelta(microseconds=999_999)
    )
    assert merged[0]["lastTransitionTime"] == NOW_TEXT


def test_transition_time_of_a_non_utc_clock_is_written_in_utc() -> None:
    plus_two = datetime(2024, 6, 1, 14, 30, 45, tzinfo=timezone(timedelta(hours=2)))
    merged = merge_conditions([], [holds(ConditionType.IN_SYNC)], generation=1, now=plus_two)
    assert merged[0]["lastTransitionTime"] == NOW_TEXT
