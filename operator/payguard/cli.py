"""Owns the `payguard` command line: `payguard run` starts the operator against a cluster."""

from __future__ import annotations

import argparse
import logging
from collections.abc import Sequence

from payguard import __version__
from payguard.settings import RunSettings


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="payguard", description=__doc__)
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
        "--resync-seconds", type=float, default=defaults.resync_seconds, help="period of the full resync"
    )
    run.add_argument(
        "--mesh-root-namespace",
        default=defaults.mesh_root_namespace,
        help="Istio's root namespace, where mesh-wide policies live",
    )
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
    run.add_argument("-v", "--verbose", action="store_true", help="log at debug level")
    return parser


def settings_from(args: argparse.Namespace) -> RunSettings:
    return RunSettings(
        namespaces=tuple(args.namespace),
        kubeconfig=args.kubeconfig,
        workers=args.workers,
        resync_seconds=args.resync_seconds,
        mesh_root_namespace=args.mesh_root_namespace,
        metrics_port=args.metrics_port,
        metrics_address=args.metrics_address,
        liveness_endpoint=args.liveness,
    )


def run_operator(run_settings: RunSettings, *, verbose: bool) -> int:
    # Imported here so `payguard --help` works without loading kopf and the handlers.
    import kopf  # noqa: PLC0415

    import payguard.handlers  # noqa: F401, PLC0415  (registers the handlers)

    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    if not verbose:
        # kopf logs every handler call at INFO; payguard logs what it does itself.
        logging.getLogger("kopf.objects").setLevel(logging.WARNING)
    kopf.run(
        standalone=True,
        clusterwide=run_settings.clusterwide,
        namespaces=list(run_settings.namespaces),
        liveness_endpoint=run_settings.liveness_endpoint,
        memo=kopf.Memo(settings=run_settings),
    )
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.command == "run":
        return run_operator(settings_from(args), verbose=args.verbose)
    raise AssertionError(f"unhandled command {args.command}")
