"""The NetworkPolicy evaluator the truth tables rely on: each rule of the API reference, one row each."""

from __future__ import annotations

from typing import Any

import pytest

from netpol_eval import HBONE_PORT, ContainerPort, Flow, Mode, Network, Pod, selects

WEB = Pod("web", "shop", "10.0.0.1", {"app": "web", "tier": "front"}, (ContainerPort("https", 8443),))
API = Pod(
    "api", "shop", "10.0.0.2", {"app": "api"}, (ContainerPort("http", 8080), ContainerPort("dns", 53, "UDP"))
)
OTHER = Pod("other", "shop", "10.0.0.3", {"app": "other"})
PROM = Pod("prom", "monitoring", "10.0.1.1", {"app": "prometheus"})
STRANGER = Pod("stranger", "elsewhere", "10.0.2.1", {"app": "prometheus"})
NAMESPACES = {"monitoring": {"team": "observability"}, "elsewhere": {"team": "other"}, "shop": {}}


def policy(name: str, spec: dict[str, Any], namespace: str = "shop") -> dict[str, Any]:
    return {"metadata": {"name": name, "namespace": namespace}, "spec": spec}


def isolate_api(**rules: Any) -> dict[str, Any]:
    return policy("api", {"podSelector": {"matchLabels": {"app": "api"}}, **rules})


INGRESS_CASES = [
    # (description, policies, flow, allowed)
    ("no policy: everything passes", [], Flow(WEB, API, 8080), True),
    (
        "a policy selecting the pod with no rules denies all ingress",
        [isolate_api()],
        Flow(WEB, API, 8080),
        False,
    ),
    (
        "a policy selecting another pod leaves this one open",
        [policy("x", {"podSelector": {"matchLabels": {"app": "other"}}})],
        Flow(WEB, API, 8080),
        True,
    ),
    (
        "a policy in another namespace does not isolate",
        [policy("x", {"podSelector": {}}, namespace="elsewhere")],
        Flow(WEB, API, 8080),
        True,
    ),
    (
        "an empty podSelector isolates every pod",
        [policy("all", {"podSelector": {}})],
        Flow(WEB, API, 8080),
        False,
    ),
    (
        "policyTypes Egress only leaves ingress open",
        [isolate_api(policyTypes=["Egress"])],
        Flow(WEB, API, 8080),
        True,
    ),
    (
        "a rule with no from and no ports admits everyone",
        [isolate_api(ingress=[{}])],
        Flow(STRANGER, API, 1),
        True,
    ),
    (
        "podSelector alone means the policy's namespace",
        [isolate_api(ingress=[{"from": [{"podSelector": {"matchLabels": {"app": "prometheus"}}}]}])],
        Flow(PROM, API, 8080),
        False,
    ),
    (
        "podSelector alone admits a matching pod of the same namespace",
        [isolate_api(ingress=[{"from": [{"podSelector": {"matchLabels": {"app": "web"}}}]}])],
        Flow(WEB, API, 8080),
        True,
    ),
    (
        "podSelector alone refuses a pod of the same namespace with other labels",
        [isolate_api(ingress=[{"from": [{"podSelector": {"matchLabels": {"app": "web"}}}]}])],
        Flow(OTHER, API, 8080),
        False,
    ),
    (
        "namespaceSelector alone admits every pod there",
        [
            isolate_api(
                ingress=[{"from": [{"namespaceSelector": {"matchLabels": {"team": "observability"}}}]}]
            )
        ],
        Flow(PROM, API, 8080),
        True,
    ),
    (
        "namespaceSelector matches the metadata.name label the API server sets",
        [
            isolate_api(
                ingress=[
                    {
                        "from": [
                            {
                                "namespaceSelector": {
                                    "matchLabels": {"kubernetes.io/metadata.name": "monitoring"}
                                }
                            }
                        ]
                    }
                ]
            )
        ],
        Flow(STRANGER, API, 8080),
        False,
    ),
    (
        "namespaceSelector and podSelector together need both",
        [
            isolate_api(
                ingress=[
                    {
                        "from": [
                            {
                                "namespaceSelector": {"matchLabels": {"team": "observability"}},
                                "podSelector": {"matchLabels": {"app": "nope"}},
                            }
                        ]
                    }
                ]
            )
        ],
        Flow(PROM, API, 8080),
        False,
    ),
    (
        "two peers are OR'ed",
        [
            isolate_api(
                ingress=[
                    {
                        "from": [
                            {"namespaceSelector": {"matchLabels": {"team": "nope"}}},
                            {"podSelector": {"matchLabels": {"app": "web"}}},
                        ]
                    }
                ]
            )
        ],
        Flow(WEB, API, 8080),
        True,
    ),
    (
        "an empty namespaceSelector means every namespace",
        [
            isolate_api(
                ingress=[
                    {
                        "from": [
                            {"namespaceSelector": {}, "podSelector": {"matchLabels": {"app": "prometheus"}}}
                        ]
                    }
                ]
            )
        ],
        Flow(STRANGER, API, 8080),
        True,
    ),
    (
        "ipBlock admits an external address in the CIDR",
        [isolate_api(ingress=[{"from": [{"ipBlock": {"cidr": "203.0.113.0/24"}}]}])],
        Flow("203.0.113.9", API, 8080),
        True,
    ),
    (
        "ipBlock except carves an address out",
        [
            isolate_api(
                ingress=[{"from": [{"ipBlock": {"cidr": "203.0.113.0/24", "except": ["203.0.113.8/29"]}}]}]
            )
        ],
        Flow("203.0.113.9", API, 8080),
        False,
    ),
    (
        "ipBlock does not match an IPv6 address",
        [isolate_api(ingress=[{"from": [{"ipBlock": {"cidr": "0.0.0.0/0"}}]}])],
        Flow("2001:db8::1", API, 8080),
        False,
    ),
    (
        "selectors never match an external address",
        [isolate_api(ingress=[{"from": [{"namespaceSelector": {}}]}])],
        Flow("203.0.113.9", API, 8080),
        False,
    ),
    (
        "a numeric port admits that port",
        [isolate_api(ingress=[{"ports": [{"port": 8080}]}])],
        Flow(WEB, API, 8080),
        True,
    ),
    (
        "a numeric port refuses another",
        [isolate_api(ingress=[{"ports": [{"port": 8080}]}])],
        Flow(WEB, API, 8081),
        False,
    ),
    (
        "protocol defaults to TCP",
        [isolate_api(ingress=[{"ports": [{"port": 53}]}])],
        Flow(WEB, API, 53, "UDP"),
        False,
    ),
    (
        "a port with a protocol admits that protocol",
        [isolate_api(ingress=[{"ports": [{"port": 53, "protocol": "UDP"}]}])],
        Flow(WEB, API, 53, "UDP"),
        True,
    ),
    (
        "endPort makes a range (inside)",
        [isolate_api(ingress=[{"ports": [{"port": 8000, "endPort": 8100}]}])],
        Flow(WEB, API, 8100),
        True,
    ),
    (
        "endPort makes a range (outside)",
        [isolate_api(ingress=[{"ports": [{"port": 8000, "endPort": 8100}]}])],
        Flow(WEB, API, 8101),
        False,
    ),
    (
        "a protocol without a port admits all its ports",
        [isolate_api(ingress=[{"ports": [{"protocol": "UDP"}]}])],
        Flow(WEB, API, 9999, "UDP"),
        True,
    ),
    (
        "a named port resolves on the destination pod",
        [isolate_api(ingress=[{"ports": [{"port": "http"}]}])],
        Flow(WEB, API, 8080),
        True,
    ),
    (
        "a named port admits no other number",
        [isolate_api(ingress=[{"ports": [{"port": "http"}]}])],
        Flow(WEB, API, 8443),
        False,
    ),
    (
        "a named port needs the container port's protocol",
        [isolate_api(ingress=[{"ports": [{"port": "dns"}]}])],
        Flow(WEB, API, 53, "UDP"),
        False,
    ),
    (
        "peers and ports of one rule are AND'ed",
        [
            isolate_api(
                ingress=[{"from": [{"podSelector": {"matchLabels": {"app": "web"}}}], "ports": [{"port": 1}]}]
            )
        ],
        Flow(WEB, API, 8080),
        False,
    ),
    (
        "policies are additive",
        [isolate_api(), isolate_api(ingress=[{"from": [{"podSelector": {"matchLabels": {"app": "web"}}}]}])],
        Flow(WEB, API, 8080),
        True,
    ),
]

EGRESS_CASES = [
    (
        "egress present without policyTypes isolates egress too",
        [
            policy(
                "web", {"podSelector": {"matchLabels": {"app": "web"}}, "egress": [{"ports": [{"port": 1}]}]}
            )
        ],
        Flow(WEB, API, 8080),
        False,
    ),
    (
        "no egress key and no policyTypes leaves egress open",
        [policy("web", {"podSelector": {"matchLabels": {"app": "web"}}})],
        Flow(WEB, API, 8080),
        True,
    ),
    (
        "policyTypes Egress without rules denies all egress",
        [policy("web", {"podSelector": {"matchLabels": {"app": "web"}}, "policyTypes": ["Egress"]})],
        Flow(WEB, "203.0.113.9", 443),
        False,
    ),
    (
        "egress ipBlock admits the external address",
        [
            policy(
                "web",
                {
                    "podSelector": {"matchLabels": {"app": "web"}},
                    "policyTypes": ["Egress"],
                    "egress": [{"to": [{"ipBlock": {"cidr": "203.0.113.0/24"}}], "ports": [{"port": 443}]}],
                },
            )
        ],
        Flow(WEB, "203.0.113.9", 443),
        True,
    ),
    (
        "egress ipBlock covers pod addresses too (the wide reading)",
        [
            policy(
                "web",
                {
                    "podSelector": {"matchLabels": {"app": "web"}},
                    "policyTypes": ["Egress"],
                    "egress": [{"to": [{"ipBlock": {"cidr": "10.0.0.0/16"}}]}],
                },
            )
        ],
        Flow(WEB, API, 8080),
        True,
    ),
    (
        "a named egress port resolves on the destination pod",
        [
            policy(
                "web",
                {"podSelector": {}, "policyTypes": ["Egress"], "egress": [{"ports": [{"port": "http"}]}]},
            )
        ],
        Flow(WEB, API, 8080),
        True,
    ),
    (
        "a named egress port never matches an external address",
        [
            policy(
                "web",
                {"podSelector": {}, "policyTypes": ["Egress"], "egress": [{"ports": [{"port": "https"}]}]},
            )
        ],
        Flow(WEB, "203.0.113.9", 8443),
        False,
    ),
    (
        "egress allowed but the destination's ingress denies",
        [
            policy(
                "web",
                {"podSelector": {"matchLabels": {"app": "web"}}, "policyTypes": ["Egress"], "egress": [{}]},
            ),
            isolate_api(),
        ],
        Flow(WEB, API, 8080),
        False,
    ),
]


@pytest.mark.parametrize(
    ("policies", "flow", "allowed"),
    [c[1:] for c in INGRESS_CASES + EGRESS_CASES],
    ids=[c[0] for c in INGRESS_CASES + EGRESS_CASES],
)
def test_network_policy_semantics(policies: list[dict[str, Any]], flow: Flow, allowed: bool) -> None:
    verdict = Network(NAMESPACES, policies).evaluate(flow)
    assert verdict.allowed is allowed, f"{flow}: {verdict}"


SELECTOR_CASES = [
    ({}, {}, True),
    ({"matchLabels": {"a": "1"}}, {"a": "1", "b": "2"}, True),
    ({"matchLabels": {"a": "1"}}, {"a": "2"}, False),
    ({"matchExpressions": [{"key": "a", "operator": "In", "values": ["1", "2"]}]}, {"a": "2"}, True),
    ({"matchExpressions": [{"key": "a", "operator": "In", "values": ["1"]}]}, {}, False),
    ({"matchExpressions": [{"key": "a", "operator": "NotIn", "values": ["1"]}]}, {}, True),
    ({"matchExpressions": [{"key": "a", "operator": "NotIn", "values": ["1"]}]}, {"a": "1"}, False),
    ({"matchExpressions": [{"key": "a", "operator": "Exists"}]}, {"a": ""}, True),
    ({"matchExpressions": [{"key": "a", "operator": "Exists"}]}, {"b": "1"}, False),
    ({"matchExpressions": [{"key": "a", "operator": "DoesNotExist"}]}, {"b": "1"}, True),
    ({"matchExpressions": [{"key": "a", "operator": "DoesNotExist"}]}, {"a": "1"}, False),
    (
        {"matchLabels": {"a": "1"}, "matchExpressions": [{"key": "b", "operator": "Exists"}]},
        {"a": "1"},
        False,
    ),
]


@pytest.mark.parametrize(("selector", "labels", "expected"), SELECTOR_CASES)
def test_label_selector_semantics(selector: dict[str, Any], labels: dict[str, str], expected: bool) -> None:
    assert selects(selector, labels) is expected


def test_unknown_selector_operator_is_an_error_not_a_silent_match() -> None:
    with pytest.raises(ValueError, match="Gt"):
        selects({"matchExpressions": [{"key": "a", "operator": "Gt", "values": ["1"]}]}, {"a": "2"})


def test_peer_without_any_selector_is_an_error() -> None:
    network = Network(NAMESPACES, [isolate_api(ingress=[{"from": [{}]}])])
    with pytest.raises(ValueError, match="peer needs"):
        network.evaluate(Flow(WEB, API, 8080))


def test_ambient_mode_carries_meshed_pod_flows_on_hbone() -> None:
    only_app_port = [isolate_api(ingress=[{"ports": [{"port": 8080}]}])]
    hbone_too = [isolate_api(ingress=[{"ports": [{"port": 8080}, {"port": HBONE_PORT}]}])]
    flow = Flow(WEB, API, 8080)
    assert Network(NAMESPACES, only_app_port).allows(flow, mode=Mode.SIDECAR)
    assert not Network(NAMESPACES, only_app_port).allows(flow, mode=Mode.AMBIENT)
    assert Network(NAMESPACES, hbone_too).allows(flow, mode=Mode.AMBIENT)


def test_ambient_mode_leaves_flows_to_unmeshed_pods_and_outside_addresses_alone() -> None:
    dns = Pod("dns", "kube-system", "10.0.9.9", {"k8s-app": "kube-dns"}, meshed=False)
    egress_dns_only = [
        policy(
            "web",
            {
                "podSelector": {},
                "policyTypes": ["Egress"],
                "egress": [{"ports": [{"port": 53, "protocol": "UDP"}]}],
            },
        )
    ]
    network = Network(NAMESPACES, egress_dns_only)
    assert network.allows(Flow(WEB, dns, 53, "UDP"), mode=Mode.AMBIENT)
    assert not network.allows(Flow(WEB, "203.0.113.9", 443), mode=Mode.AMBIENT)


def test_verdict_explains_which_policy_decided() -> None:
    verdict = Network(NAMESPACES, [isolate_api()]).evaluate(Flow(WEB, API, 8080))
    assert "shop/api" in verdict.ingress
    assert "not isolated" in verdict.egress
