"""Owns the `payguard` command line: `payguard run` starts the operator; render, check, diff, explain, graph
and evidence serve CI, GitOps, on-call and auditors (each lives in its own module under payguard.tools)."""

from __future__ import annotations

import argparse
import functools
import json
import logging
import os
import socket
from collections.abc import Callable, Sequence
from types import ModuleType
from typing import TypeVar

from payguard import __version__
from payguard.platform import (
    ISTIOD,
    KUBE_DNS,
    Platform,
    PlatformError,
    ServicePort,
    parse_destination,
    parse_network,
    parse_ports,
)
from payguard.ratelimit import client_limit
from payguard.settings import Election, LabelRequirement, RunSettings
from payguard.tools import check, diff, evidence, explain, graph, render

_Value = TypeVar("_Value")

# The subcommands beyond `run`: each module has SUMMARY, EXAMPLES, add_arguments(parser) and main(args).
TOOLS: dict[str, ModuleType] = {
    "render": render,
    "check": check,
    "diff": diff,
    "explain": explain,
    "graph": graph,
    "evidence": evidence,
}
# Tools whose output depends on where the platform essentials live: they take run's platform flags.
PLATFORM_TOOLS = frozenset({"render", "diff", "graph"})

DESCRIPTION = (
    "payguard keeps the zero-trust controls of every PaymentService in place (STRICT mTLS, Istio "
    "AuthorizationPolicies, NetworkPolicies, short-lived certificates), repairs drift and reports what "
    "holds as status conditions. `payguard run` starts the operator; render, check, diff, explain, graph "
    "and evidence serve CI, GitOps, on-call and auditors. See README.md for the conditions."
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="payguard", description=DESCRIPTION)
    parser.add_argument("--version", action="version", version=f"payguard {__version__}")
    commands = parser.add_subparsers(dest="command", required=True)

    run = commands.add_parser("run", help="run the operator (in-cluster credentials, else $KUBECONFIG)")
    defaults = RunSettings()
    run.add_argument(
        "-n",
        "--namespace",
        action="append",
        default=[],
        metavar="NAMESPACE",
        help="watch only this namespace (repeatable); default: all namespaces",
    )
    run.add_argument(
        "--kubeconfig", default=None, help="kubeconfig file; default: in-cluster, else $KUBECONFIG"
    )
    run.add_argument("--workers", type=int, default=defaults.workers, help="reconcile passes at once")
    run.add_argument(
        "--qps",
        type=float,
        default=defaults.qps,
        help="a client-side limit: API requests per second, on average (default 0: none; the API "
        "server's priority and fairness governs)",
    )
    run.add_argument(
        "--burst",
        type=int,
        default=defaults.burst,
        help="API requests at once above --qps (default 0: twice --qps; only with --qps)",
    )
    run.add_argument(
        "--selector",
        default="",
        metavar="KEY=VALUE|KEY!=VALUE[,...]",
        help="only PaymentServices whose labels match every term (default: all)",
    )
    run.add_argument(
        "--audit-only",
        action="store_true",
        help="treat every PaymentService as enforcement: Audit (write nothing that blocks traffic)",
    )
    run.add_argument(
        "--resync-seconds", type=float, default=defaults.resync_seconds, help="period of the full resync"
    )
    run.add_argument(
        "--fight-window-seconds",
        type=float,
        default=defaults.fight_window_seconds,
        help="three drifts of one object within this many seconds are a fight with another writer",
    )
    run.add_argument(
        "--mesh-root-namespace",
        default=defaults.mesh_root_namespace,
        help="Istio's root namespace, where mesh-wide policies live",
    )
    run.add_argument(
        "--mesh-config-name",
        default=defaults.mesh_config_name,
        help="Istio's mesh config ConfigMap in the mesh root namespace (trust domain and aliases)",
    )
    add_platform_arguments(run)
    run.add_argument(
        "--metrics-port", type=int, default=0, help="serve Prometheus metrics on this port (0: off)"
    )
    run.add_argument(
        "--metrics-address", default=defaults.metrics_address, help="address for the metrics port"
    )
    run.add_argument(
        "--liveness",
        metavar="URL",
        default=None,
        help="kopf liveness probe, e.g. http://0.0.0.0:8081/healthz",
    )
    add_election_arguments(run)
    run.add_argument(
        "--log-level", default="INFO", choices=["DEBUG", "INFO", "WARNING", "ERROR"], help="log threshold"
    )
    run.add_argument(
        "--log-format", default="text", choices=["text", "json"], help="json: one object per line"
    )
    run.add_argument("-v", "--verbose", action="store_true", help="same as --log-level DEBUG")
    _add_tools(commands)
    return parser


def add_election_arguments(parser: argparse.ArgumentParser) -> None:
    """High availability: replicas share the shards of PaymentServices through Leases."""
    election = Election(identity="", namespace="")
    parser.add_argument(
        "--leader-elect",
        action="store_true",
        help="share the work through coordination.k8s.io Leases (off: this process owns everything)",
    )
    parser.add_argument(
        "--shards", type=int, default=election.shards, help="shards (by namespace hash), one Lease each"
    )
    parser.add_argument(
        "--lease-duration",
        type=float,
        default=election.lease_duration,
        help="seconds a candidate waits without seeing a renewal before taking a Lease over",
    )
    parser.add_argument(
        "--renew-deadline",
        type=float,
        default=election.renew_deadline,
        help="seconds after the last successful renew at which a holder stops writing",
    )
    parser.add_argument(
        "--retry-period", type=float, default=election.retry_period, help="seconds between Lease rounds"
    )
    parser.add_argument(
        "--identity",
        default=os.environ.get("POD_NAME") or socket.gethostname(),
        help="holder identity in the Leases (default: $POD_NAME, else the host name)",
    )
    parser.add_argument(
        "--lease-prefix",
        default=election.group,
        help="Lease names start with this (the chart: its release name), so two installations never share",
    )
    parser.add_argument(
        "--lease-namespace",
        default=os.environ.get("POD_NAMESPACE", ""),
        help="namespace of the Leases, the operator's own (default: $POD_NAMESPACE)",
    )


def election_from(args: argparse.Namespace) -> Election | None:
    """The election settings, or None without --leader-elect; ValueError names every bad flag."""
    election = Election(
        identity=args.identity,
        namespace=args.lease_namespace,
        shards=args.shards,
        lease_duration=args.lease_duration,
        renew_deadline=args.renew_deadline,
        retry_period=args.retry_period,
        group=args.lease_prefix,
    )
    if not args.leader_elect:
        if args.shards != 1:
            raise ValueError("--shards needs --leader-elect (without it one process owns every shard)")
        return None
    if problems := election.problems():
        raise ValueError("; ".join(problems))
    return election


def add_platform_arguments(parser: argparse.ArgumentParser) -> None:
    """Where the platform essentials live (cluster DNS, istiod, a separate mesh CA): every workload's egress
    allows them. Repeatable flags replace the default once given; README.md has examples per platform."""
    group = parser.add_argument_group(
        "platform", "where the essentials every workload must reach live, and the cluster's networks"
    )
    pods_or_ip = "NAMESPACE/KEY=VALUE[,...]|IP[/PREFIX]"
    group.add_argument(
        "--dns",
        action="append",
        type=_checked(parse_destination),
        metavar=pods_or_ip,
        help=f"cluster DNS pods or a node-local address (repeatable; default: {KUBE_DNS})",
    )
    group.add_argument(
        "--dns-port",
        action="append",
        type=_checked(functools.partial(parse_ports, default_protocols=("UDP", "TCP"))),
        metavar="PORT[/PROTOCOL]",
        help="cluster DNS port, UDP and TCP unless a protocol is named (repeatable; default: 53)",
    )
    group.add_argument(
        "--istiod",
        action="append",
        type=_checked(parse_destination),
        metavar=pods_or_ip,
        help=f"the mesh control plane's pods (repeatable; default: {ISTIOD})",
    )
    group.add_argument(
        "--istiod-port",
        action="append",
        type=_checked(functools.partial(parse_ports, default_protocols=("TCP",))),
        metavar="PORT[/PROTOCOL]",
        help="istiod's xDS and certificate port (repeatable; default: 15012)",
    )
    group.add_argument(
        "--mesh-ca",
        action="append",
        type=_checked(parse_destination),
        metavar=pods_or_ip,
        help="a mesh CA apart from istiod, e.g. istio-csr (repeatable; needs --mesh-ca-port)",
    )
    group.add_argument(
        "--mesh-ca-port",
        action="append",
        type=_checked(functools.partial(parse_ports, default_protocols=("TCP",))),
        metavar="PORT[/PROTOCOL]",
        help="the mesh CA's port (repeatable)",
    )
    for flag, what in (("--pod-cidr", "pod"), ("--service-cidr", "Service")):
        group.add_argument(
            flag,
            action="append",
            type=_checked(parse_network),
            metavar="CIDR",
            help=f"the cluster's {what} network (repeatable): egress CIDRs overlapping it are InvalidSpec",
        )


def platform_from(args: argparse.Namespace) -> Platform:
    """The platform the flags describe; PlatformError names the flag when two flags disagree."""
    if bool(args.mesh_ca) != bool(args.mesh_ca_port):
        raise PlatformError("--mesh-ca and --mesh-ca-port go together: where the mesh CA runs, and its port")
    default = Platform()
    return Platform(
        dns=tuple(args.dns or default.dns),
        dns_ports=_unique(args.dns_port) or default.dns_ports,
        mesh=tuple(args.istiod or default.mesh),
        mesh_ports=_unique(args.istiod_port) or default.mesh_ports,
        mesh_ca=tuple(args.mesh_ca or ()),
        mesh_ca_ports=_unique(args.mesh_ca_port),
        pod_cidrs=tuple(args.pod_cidr or ()),
        service_cidrs=tuple(args.service_cidr or ()),
    )


def _unique(groups: list[tuple[ServicePort, ...]] | None) -> tuple[ServicePort, ...]:
    return tuple(dict.fromkeys(port for group in groups or () for port in group))


def _checked(parse: Callable[[str], _Value]) -> Callable[[str], _Value]:
    """argparse shows ArgumentTypeError's message after the flag's name; a ValueError it would hide."""

    def read(text: str) -> _Value:
        try:
            return parse(text)
        except PlatformError as error:
            raise argparse.ArgumentTypeError(str(error)) from None

    return read


def _add_tools(commands: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    for name, module in TOOLS.items():
        parser = commands.add_parser(
            name,
            help=module.SUMMARY,
            description=module.SUMMARY,
            epilog=module.EXAMPLES,
            formatter_class=argparse.RawDescriptionHelpFormatter,
        )
        module.add_arguments(parser)
        if name in PLATFORM_TOOLS:
            add_platform_arguments(parser)
        handler: Callable[[argparse.Namespace], int] = module.main
        parser.set_defaults(handler=handler)


def settings_from(args: argparse.Namespace) -> RunSettings:
    return RunSettings(
        namespaces=tuple(args.namespace),
        kubeconfig=args.kubeconfig,
        workers=args.workers,
        qps=args.qps,
        burst=args.burst,
        audit_only=args.audit_only,
        selector=parse_selector(args.selector),
        resync_seconds=args.resync_seconds,
        fight_window_seconds=args.fight_window_seconds,
        mesh_root_namespace=args.mesh_root_namespace,
        mesh_config_name=args.mesh_config_name,
        platform=platform_from(args),
        metrics_port=args.metrics_port,
        metrics_address=args.metrics_address,
        liveness_endpoint=args.liveness,
        election=election_from(args),
    )


def parse_selector(text: str) -> tuple[LabelRequirement, ...]:
    """`tier=cde,canary!=true` -> requirements every selected PaymentService's labels meet (sorted)."""
    requirements = []
    for item in filter(None, (part.strip() for part in text.split(","))):
        key, sep, value = item.partition("!=")
        equals = not sep
        if equals:
            key, sep, value = item.partition("=")
            value = value.removeprefix("=")  # `==` means `=`, as in kubectl
        if not sep or not key.strip():
            raise argparse.ArgumentTypeError(f"--selector wants KEY=VALUE or KEY!=VALUE terms, got {item!r}")
        requirements.append(LabelRequirement(key.strip(), value.strip(), equals=equals))
    return tuple(sorted(requirements, key=str))


def run_operator(run_settings: RunSettings, *, log_level: str, log_format: str) -> int:
    # Imported here so `payguard --help` works without loading kopf and the handlers.
    from payguard import handlers  # noqa: PLC0415

    configure_logging(level=log_level, json_lines=log_format == "json")
    handlers.run(run_settings)
    return 0


class JsonLines(logging.Formatter):
    """One JSON object per line, for log pipelines that parse structure."""

    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "time": self.formatTime(record, "%Y-%m-%dT%H:%M:%S%z"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        entry.update(getattr(record, "fields", None) or {})  # namespace, name, kind, reason of the object
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry)


def configure_logging(*, level: str, json_lines: bool) -> None:
    handler = logging.StreamHandler()
    handler.setFormatter(
        JsonLines() if json_lines else logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s")
    )
    logging.basicConfig(level=level, handlers=[handler], force=True)
    if level != "DEBUG":
        # kopf logs every handler call at INFO; payguard logs what it does itself.
        logging.getLogger("kopf.objects").setLevel(logging.WARNING)


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        settings = settings_from(args) if args.command == "run" else None
        if args.command in PLATFORM_TOOLS:
            args.platform = platform_from(args)
    except ValueError as error:  # PlatformError and the election flags
        parser.error(str(error))
    if settings is not None:
        try:
            client_limit(qps=args.qps, burst=args.burst)
        except ValueError as error:
            parser.error(str(error))  # exits 2, naming the flag
        level = "DEBUG" if args.verbose else args.log_level
        return run_operator(settings, log_level=level, log_format=args.log_format)
    result: int = args.handler(args)
    return result
