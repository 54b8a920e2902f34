"""Owns the `payguard` command line: `payguard run` starts the operator against the cluster in KUBECONFIG."""

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

    run = commands.add_parser("run", help="run the operator against the cluster in KUBECONFIG")
    run.add_argument(
        "-n",
        "--namespace",
        action="append",
        default=[],
        metavar="NAMESPACE",
        help="watch only this namespace (repeatable); default: all namespaces",
    )
    run.add_argument(
        "--liveness",
        metavar="URL",
        default=None,
        help="serve kopf's liveness probe, e.g. http://0.0.0.0:8080/healthz",
    )
    run.add_argument("-v", "--verbose", action="store_true", help="log at debug level")
    return parser


def run_operator(run_settings: RunSettings, *, verbose: bool) -> int:
    # Imported here so `payguard --help` works without loading kopf and the handlers.
    import kopf  # noqa: PLC0415

    import payguard.handlers  # noqa: F401, PLC0415  (registers the handlers)

    logging.basicConfig(level=logging.DEBUG if verbose else logging.INFO)
    kopf.run(
        standalone=True,
        clusterwide=run_settings.clusterwide,
        namespaces=list(run_settings.namespaces),
        liveness_endpoint=run_settings.liveness_endpoint,
    )
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.command == "run":
        return run_operator(
            RunSettings(namespaces=tuple(args.namespace), liveness_endpoint=args.liveness),
            verbose=args.verbose,
        )
    raise AssertionError(f"unhandled command {args.command}")
