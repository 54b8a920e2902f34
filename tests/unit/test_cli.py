"""The `payguard` command line parses what the README documents."""

from __future__ import annotations

import pytest

from payguard.cli import build_parser
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
