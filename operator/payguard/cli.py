"""Owns the `payguard` command line: `payguard run` starts the operator; render, check, diff, explain, graph
and evidence serve CI, GitOps, on-call and auditors (each lives in its own module under payguard.tools)."""

from __future__ import annotations

import argparse
import json
import logging
import os
import socket
from collections.abc import Callable, Sequence
from types import ModuleType

from payguard import __version__
from payguard.settings import Election, LabelRequirement, Labels, Platform, RunSettings
from payguard.tools import check, diff, evidence, explain, graph, render

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
    run.add_argument("--qps", type=float, default=defaults.qps, help="API requests per second, on average")
    run.add_argument("--burst", type=int, default=defaults.burst, help="API requests at once above --qps")
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
    """Where the platform essentials live (cluster DNS, istiod): every workload's egress allows them."""
    platform = Platform()
    parser.add_argument(
        "--dns-namespace", default=platform.dns_namespace, help="namespace of the cluster DNS pods"
    )
    parser.add_argument(
        "--dns-labels",
        type=parse_labels,
        default=platform.dns_pod_labels,
        metavar="KEY=VALUE[,...]",
        help=f"labels of the cluster DNS pods (default: {_labels_text(platform.dns_pod_labels)})",
    )
    parser.add_argument(
        "--dns-port", type=int, default=platform.dns_port, help="cluster DNS port (UDP and TCP)"
    )
    parser.add_argument("--istiod-namespace", default=platform.mesh_namespace, help="namespace of istiod")
    parser.add_argument(
        "--istiod-labels",
        type=parse_labels,
        default=platform.mesh_pod_labels,
        metavar="KEY=VALUE[,...]",
        help=f"labels of the istiod pods (default: {_labels_text(platform.mesh_pod_labels)})",
    )
    parser.add_argument(
        "--istiod-port", type=int, default=platform.mesh_port, help="istiod's xDS and certificate port"
    )


def platform_from(args: argparse.Namespace) -> Platform:
    return Platform(
        dns_namespace=args.dns_namespace,
        dns_pod_labels=args.dns_labels,
        dns_port=args.dns_port,
        mesh_namespace=args.istiod_namespace,
        mesh_pod_labels=args.istiod_labels,
        mesh_port=args.istiod_port,
    )


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


def parse_labels(text: str) -> Labels:
    """`k8s-app=kube-dns,tier=dns` -> (("k8s-app", "kube-dns"), ("tier", "dns")): pod labels to match."""
    requirements = parse_selector(text)
    if not requirements or not all(r.equals for r in requirements):
        raise argparse.ArgumentTypeError(f"wants KEY=VALUE[,KEY=VALUE] labels, got {text!r}")
    return tuple((r.key, r.value) for r in requirements)


def _labels_text(labels: Labels) -> str:
    return ",".join(f"{key}={value}" for key, value in labels)


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
    args = build_parser().parse_args(argv)
    if args.command == "run":
        level = "DEBUG" if args.verbose else args.log_level
        try:
            settings = settings_from(args)
        except ValueError as error:
            build_parser().error(str(error))
        return run_operator(settings, log_level=level, log_format=args.log_format)
    if args.command in PLATFORM_TOOLS:
        args.platform = platform_from(args)
    result: int = args.handler(args)
    return result
