"""The `payguard` command line parses what the README documents."""

from __future__ import annotations

import argparse

import pytest

from payguard.cli import build_parser, parse_selector, settings_from
from payguard.settings import RunSettings


def test_run_watches_all_namespaces_by_default() -> None:
    args = build_parser().parse_args(["run"])
    settings = RunSettings(namespaces=tuple(args.namespace))
    assert settings.clusterwide
    assert settings.namespaces == ()


def test_run_accepts_repeated_namespaces() -> None:
    args = build_parser().parse_args(["run", "--namespace", "payments", "-n", "edge"])
    settings = RunSettings(namespaces=tuple(args.namespace))
    assert not settings.clusterwide
    assert settings.namespaces == ("payments", "edge")


def test_a_command_is_required() -> None:
    with pytest.raises(SystemExit) as exited:
        build_parser().parse_args([])
    assert exited.value.code == 2


def test_selector_is_parsed_into_sorted_pairs_ignoring_a_trailing_comma() -> None:
    assert parse_selector("tier=cde,payguard.dev/enabled=true,") == (
        ("payguard.dev/enabled", "true"),
        ("tier", "cde"),
    )
    assert parse_selector("") == ()


def test_selector_without_a_value_is_refused() -> None:
    with pytest.raises(argparse.ArgumentTypeError):
        parse_selector("tier")


def test_every_run_flag_reaches_the_settings() -> None:
    args = build_parser().parse_args(
        ["run", "--workers", "8", "--qps", "20", "--burst", "40", "--selector", "tier=cde", "--audit-only"]
    )
    settings = settings_from(args)
    assert (settings.workers, settings.qps, settings.burst) == (8, 20.0, 40)
    assert settings.selector == (("tier", "cde"),)
    assert settings.audit_only is True
