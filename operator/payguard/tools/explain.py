"""Owns `payguard explain`: may FROM call TO on a port (and method, path)? Allowed or denied at each layer,
naming the object and rule that decides, offline from manifests (rendered by the operator's renderer, plus
any Istio or NetworkPolicy objects in the same files) or live from the cluster, foreign policies included."""

from __future__ import annotations

import argparse
import ipaddress
import json
import sys
from collections.abc import Mapping, Sequence
from dataclasses import asdict
from typing import Any

from payguard.api import ApiError
from payguard.kinds import AUTHORIZATION_POLICIES, NETWORK_POLICIES, PAYMENT_SERVICES, PEER_AUTHENTICATIONS
from payguard.model import InvalidSpec, PaymentService, Principal, Workload
from payguard.platform import Platform
from payguard.posture.objects import namespace_of
from payguard.posture.scopes import DEFAULT_MESH_ROOT_NAMESPACE
from payguard.spec import parse_payment_service
from payguard.tools.layers import (
    ALLOWED,
    DENIED,
    Caller,
    LayerVerdict,
    Request,
    authorization_layer,
    mtls_layer,
    network_layer,
)
from payguard.tools.render import add_input_arguments, parse_services, render_services
from payguard.tools.sources import SourceError, read_documents

POLICY_KINDS = {t.kind: t for t in (NETWORK_POLICIES, PEER_AUTHENTICATIONS, AUTHORIZATION_POLICIES)}


class ExplainError(Exception):
    """The question cannot be answered as asked (unknown workload, bad --from)."""


def explain(
    services: Sequence[PaymentService],
    objects: Sequence[Mapping[str, Any]],
    *,
    source: str,
    target: str,
    namespace: str | None,
    request: Request,
    mesh_root_namespace: str = DEFAULT_MESH_ROOT_NAMESPACE,
) -> tuple[PaymentService, Caller, list[LayerVerdict]]:
    """The verdict of each layer for one call; pure."""
    service, workload = _find_target(services, target, namespace)
    caller = parse_caller(source, service=service, services=services)
    by_kind: dict[str, list[Mapping[str, Any]]] = {kind: [] for kind in POLICY_KINDS}
    for obj in objects:
        if obj.get("kind") in by_kind:
            by_kind[obj["kind"]].append(obj)
    verdicts = [
        network_layer(
            by_kind["NetworkPolicy"],
            namespace=service.namespace,
            target=workload,
            caller=caller,
            request=request,
        ),
        mtls_layer(
            service,
            by_kind["PeerAuthentication"],
            target=workload,
            caller=caller,
            mesh_root_namespace=mesh_root_namespace,
        ),
        authorization_layer(
            by_kind["AuthorizationPolicy"],
            namespace=service.namespace,
            target=workload,
            caller=caller,
            request=request,
            mesh_root_namespace=mesh_root_namespace,
        ),
    ]
    return service, caller, verdicts


def _find_target(
    services: Sequence[PaymentService], target: str, namespace: str | None
) -> tuple[PaymentService, Workload]:
    if "/" in target:
        namespace, target = target.split("/", 1)
    for service in services:
        if namespace is not None and service.namespace != namespace:
            continue
        for workload in service.workloads:
            if workload.name == target:
                return service, workload
    where = f" in namespace {namespace}" if namespace else ""
    raise ExplainError(f"no PaymentService has a workload named {target!r}{where}")


def parse_caller(text: str, *, service: PaymentService, services: Sequence[PaymentService]) -> Caller:
    """`203.0.113.7` or a CIDR: plaintext from a network; `ns/sa`: a mesh principal; else a workload name."""
    try:
        network = ipaddress.ip_network(text, strict=False)
    except ValueError:
        network = None
    if network is not None:
        return Caller(text=text, network=network)
    if "/" in text:
        namespace, account = text.split("/", 1)
        principal = Principal(namespace=namespace, service_account=account)
        labels = next(
            (
                w.match_labels
                for s in services
                if s.namespace == namespace
                for w in s.workloads
                if w.service_account == account
            ),
            None,
        )
        if labels is None:  # else the pods the spec names for this principal (principal.selector), if any
            labels = next(
                (
                    dict(c.pod_selector)
                    for w in service.workloads
                    for c in w.callers
                    if c.principal == principal and c.pod_selector
                ),
                None,
            )
        return Caller(
            text=text,
            namespace=namespace,
            labels=labels,
            principal=principal.istio_principal(service.trust_domain),
        )
    try:
        workload = service.workload(text)
    except KeyError:
        raise ExplainError(
            f"--from {text!r} is neither a workload of {service.namespace}/{service.name}, "
            "a namespace/serviceAccount nor an IP network"
        ) from None
    return Caller(
        text=f"{service.namespace}/{workload.name}",
        namespace=service.namespace,
        labels=workload.match_labels,
        principal=service.principal_of(workload).istio_principal(service.trust_domain),
    )


def format_verdicts(
    caller: Caller, target: str, request: Request, verdicts: Sequence[LayerVerdict], *, output: str
) -> str:
    overall = DENIED if any(v.verdict == DENIED for v in verdicts) else ALLOWED
    if output == "json":
        body = {"from": caller.text, "to": target, **asdict(request), "verdict": overall}
        return json.dumps({**body, "layers": [asdict(v) for v in verdicts]}, indent=2) + "\n"
    call = " ".join(filter(None, [f"port {request.port}", request.method, request.path]))
    rows = [
        ("LAYER", "VERDICT", "DECIDED BY", "WHY"),
        *((v.layer, v.verdict, v.decided_by, v.why) for v in verdicts),
    ]
    widths = [max(len(row[i]) for row in rows) for i in range(3)]
    lines = [f"{caller.text} -> {target} {call}"]
    lines += [
        "  ".join(cell.ljust(width) for cell, width in zip(row[:3], widths, strict=True)) + "  " + row[3]
        for row in rows
    ]
    lines.append(f"verdict: {overall}")
    return "\n".join(lines) + "\n"


SUMMARY = "explain whether a caller may reach a workload, layer by layer, and which object decides"
EXAMPLES = """exit status: 0 allowed, 1 denied, 2 error

examples:
  payguard explain -f examples/checkout.yaml --from istio-ingress/istio-ingressgateway \\
      --to api-gateway --port 8443 --method POST --path /v1/payments
  payguard explain -f examples/checkout.yaml --from api-gateway --to fraud-engine --port 9443
  payguard explain --live -n payments --from 10.0.0.7 --to order-service --port 8443
"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_input_arguments(parser, required=False)
    parser.add_argument(
        "--live", action="store_true", help="read PaymentServices and policies from the cluster"
    )
    parser.add_argument("--kubeconfig", default=None, help="kubeconfig file (with --live)")
    parser.add_argument(
        "--from", dest="source", required=True, metavar="WORKLOAD|NS/SA|CIDR", help="the caller"
    )
    parser.add_argument(
        "--to", dest="target", required=True, metavar="[NS/]WORKLOAD", help="the workload called"
    )
    parser.add_argument("--port", type=int, required=True, help="the port called")
    parser.add_argument("--method", default=None, help="HTTP method, for L7 rules")
    parser.add_argument("--path", default=None, help="HTTP path, for L7 rules")
    parser.add_argument(
        "--mesh-root-namespace", default=DEFAULT_MESH_ROOT_NAMESPACE, help="Istio's root namespace"
    )
    parser.add_argument("-o", "--output", choices=["text", "json"], default="text", help="output format")


def main(args: argparse.Namespace) -> int:
    request = Request(port=args.port, method=args.method, path=args.path)
    try:
        if args.live:
            services, objects = _live(args)
        else:
            if not args.filename:
                raise ExplainError("give -f FILE (offline) or --live")
            services, objects = _offline(args)
        _service, caller, verdicts = explain(
            services,
            objects,
            source=args.source,
            target=args.target,
            namespace=args.namespace,
            request=request,
            mesh_root_namespace=args.mesh_root_namespace,
        )
    except (ExplainError, SourceError, ApiError) as error:
        print(f"payguard explain: {error}", file=sys.stderr)
        return 2
    sys.stdout.write(format_verdicts(caller, args.target, request, verdicts, output=args.output))
    return 1 if any(v.verdict == DENIED for v in verdicts) else 0


def _offline(args: argparse.Namespace) -> tuple[list[PaymentService], list[Mapping[str, Any]]]:
    documents = read_documents(args.filename)
    services, refused = parse_services(documents, namespace=args.namespace)
    if refused:
        raise ExplainError(f"{refused[0]} (run payguard check)")
    extra = [d.body for d in documents if isinstance(d.body, dict) and d.body.get("kind") in POLICY_KINDS]
    # Only the ingress of the called workload is judged: where the platform essentials live is moot.
    return services, [*render_services(services, platform=Platform()), *extra]


def _live(args: argparse.Namespace) -> tuple[list[PaymentService], list[Mapping[str, Any]]]:
    from payguard.cluster import connect  # noqa: PLC0415 - offline use needs no client

    cluster = connect(args.kubeconfig)
    namespace = args.namespace or (args.target.split("/")[0] if "/" in args.target else "default")
    services = []
    items, _ = cluster.list_with_version(PAYMENT_SERVICES, namespace=namespace)
    for item in items:
        try:
            services.append(parse_payment_service(item))
        except InvalidSpec:
            continue  # the operator reports it; explain answers for the valid ones
    objects: list[Mapping[str, Any]] = []
    for resource in POLICY_KINDS.values():
        for where in dict.fromkeys((namespace, args.mesh_root_namespace)):
            listed, _ = cluster.list_with_version(resource, namespace=where)
            objects += [obj for obj in listed if namespace_of(obj) == where]
    return services, objects
