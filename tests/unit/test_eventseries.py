"""Event aggregation: the same Event again within the window counts up the first one's series."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from payguard.eventseries import SERIES_WINDOW, EventSeries

NOW = datetime(2031, 3, 4, 5, 6, 7, tzinfo=UTC)
FIGHT = ("payments", "uid-1", "Warning", "DriftRepeated", "Repair", "PeerAuthentication/x drifted")


def test_the_first_occurrence_is_a_new_event_and_repeats_count_up_its_series() -> None:
    series = EventSeries()
    first = series.occur(FIGHT, new_name="checkout.1", now=NOW)
    repeats = [series.occur(FIGHT, new_name=f"checkout.{n}", now=NOW + timedelta(seconds=n)) for n in (2, 3)]

    assert (first.name, first.count, first.is_new) == ("checkout.1", 1, True)
    assert [(r.name, r.count, r.is_new) for r in repeats] == [
        ("checkout.1", 2, False),
        ("checkout.1", 3, False),
    ]


def test_another_note_or_reason_is_another_event() -> None:
    series = EventSeries()
    series.occur(FIGHT, new_name="checkout.1", now=NOW)
    other = series.occur((*FIGHT[:5], "another note"), new_name="checkout.2", now=NOW)

    assert (other.name, other.is_new) == ("checkout.2", True)


def test_a_series_closes_after_the_window_without_an_occurrence() -> None:
    series = EventSeries()
    series.occur(FIGHT, new_name="checkout.1", now=NOW)
    series.occur(FIGHT, new_name="checkout.2", now=NOW + SERIES_WINDOW - timedelta(seconds=1))
    later = series.occur(FIGHT, new_name="checkout.3", now=NOW + 2 * SERIES_WINDOW)

    assert (later.name, later.is_new) == ("checkout.3", True)


def test_a_forgotten_series_starts_again_with_a_new_event() -> None:
    series = EventSeries()
    series.occur(FIGHT, new_name="checkout.1", now=NOW)
    series.forget(FIGHT)  # the patch failed: the Event is gone

    assert series.occur(FIGHT, new_name="checkout.2", now=NOW).name == "checkout.2"
