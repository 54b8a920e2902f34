"""The leader-election flags: off by default (today's single owner), validated with the flag named."""

from __future__ import annotations

import pytest

from payguard.cli import build_parser, main, settings_from
from payguard.settings import Election

LEASES = ["--leader-elect", "--identity", "payguard-0", "--lease-namespace", "payguard-system"]


def test_without_leader_election_there_are_no_leases() -> None:
    assert settings_from(build_parser().parse_args(["run"])).election is None


def test_election_flags_reach_the_settings() -> None:
    args = build_parser().parse_args(
        [
            "run",
            *LEASES,
            "--shards",
            "8",
            "--lease-duration",
            "4",
            "--renew-deadline",
            "3",
            "--retry-period",
            "0.5",
            "--lease-prefix",
            "payguard-canary",
        ]
    )
    assert settings_from(args).election == Election(
        identity="payguard-0",
        namespace="payguard-system",
        shards=8,
        lease_duration=4.0,
        renew_deadline=3.0,
        retry_period=0.5,
        group="payguard-canary",
    )


def test_identity_and_namespace_default_to_the_pods_downward_api(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("POD_NAME", "payguard-7d9f-x2v")
    monkeypatch.setenv("POD_NAMESPACE", "payguard-system")
    election = settings_from(build_parser().parse_args(["run", "--leader-elect"])).election
    assert election is not None and (election.identity, election.namespace) == (
        "payguard-7d9f-x2v",
        "payguard-system",
    )


@pytest.mark.parametrize(
    ("flags", "named"),
    [
        (["--renew-deadline", "15"], "--lease-duration must be longer than --renew-deadline"),
        (["--retry-period", "10"], "--renew-deadline must be longer than --retry-period"),
        (["--retry-period", "0"], "--retry-period must be above 0"),
        (["--lease-duration", "15.5"], "--lease-duration must be whole seconds"),
        (["--shards", "0"], "--shards must be between 1 and 1024"),
        (["--lease-namespace", ""], "--lease-namespace is empty"),
        (["--lease-prefix", "Payguard_1"], "--lease-prefix must be a DNS label"),
    ],
)
def test_bad_election_settings_are_refused_naming_the_flag(
    flags: list[str], named: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exit_:
        main(["run", *LEASES, *flags])
    assert exit_.value.code == 2
    assert named in capsys.readouterr().err


def test_shards_without_leader_election_are_refused(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["run", "--shards", "4"])
    assert "--shards needs --leader-elect" in capsys.readouterr().err
