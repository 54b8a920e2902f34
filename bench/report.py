"""Owns the written results: latest.json (everything), latest.md (the tables a person reads) and
latency.png (latency against scale, payguard and the floor), all in the output folder.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any


def write_results(results: dict[str, Any], output: Path) -> None:
    output.mkdir(parents=True, exist_ok=True)
    (output / "latest.json").write_text(json.dumps(results, indent=2, sort_keys=False) + "\n")
    (output / "latest.md").write_text(markdown(results))
    plot_latency(results, output / "latency.png")


# --- Markdown ------------------------------------------------------------------------------------------


def _fmt(value: Any, unit: str = "") -> str:
    if value is None:
        return "n/a"
    text = (f"{value:.3f}" if value < 10 else f"{value:.1f}") if isinstance(value, float) else str(value)
    return f"{text} {unit}".strip()


def _table(header: Sequence[str], rows: Iterable[Sequence[Any]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(cell) for cell in row) + " |" for row in rows]
    return [*lines, ""]


def markdown(results: dict[str, Any]) -> str:
    lines = [
        f"# payguard benchmark results ({results['mode']} run)",
        "",
        _provenance(results),
        "",
        "## Targets",
        "",
        *_table(
            ["goal", "measured", "met"],
            (
                [
                    t["goal"],
                    _fmt(t["value"], t["unit"]),
                    {True: "yes", False: "**no**", None: "n/a"}[t["met"]],
                ]
                for t in results["targets"]
            ),
        ),
        *_not_measured_section(results),
        *_latency_section(results),
        *_requests_section(results),
        *_steady_state_section(results),
        *_resources_section(results),
        *_profile_section(results),
    ]
    return "\n".join(lines)


def _not_measured_section(results: dict[str, Any]) -> list[str]:
    failed = results.get("not_measured") or {}
    if not failed:
        return []
    lines = ["## Not measured", ""]
    lines += [f"- {scale} PaymentServices: {why}" for scale, why in failed.items()]
    return [*lines, ""]


def _provenance(results: dict[str, Any]) -> str:
    machine, versions = results["machine"], results["versions"]
    settings = results["settings"]
    return (
        f"{results['date']}, {results['duration_seconds']:.0f} s. Machine: {machine['nproc']} cores "
        f"({machine['cpu']}), {machine['memory_gib']} GiB, Linux {machine['kernel']}. payguard "
        f"{versions['payguard']} ({versions['commit']}), Python {versions['python']}, "
        f"kopf {versions['kopf']}, kubernetes client {versions['kubernetes_client']}, "
        f"Kubernetes {versions['kubernetes']} (local control plane, audit log on). Load average at the end: "
        f"{machine['load_average']}. payguard `--workers {settings['workers']} --resync-seconds "
        f"{settings['resync_seconds']:.0f}`; PaymentServices are `examples/checkout.yaml` (4 workloads, "
        f"{settings['children_per_service']} children), {settings['per_namespace']} per namespace."
    )


def _all_bursts(results: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    """Each burst with its row label; the profiled repeat last."""
    bursts = [(f"{burst['count']} at once", burst) for burst in results["bursts"]]
    profiled = results.get("profiled")
    if profiled:
        bursts.append((f"{profiled['count']} at once again, py-spy attached", profiled))
    return bursts


def _percentiles(figures: dict[str, Any], *keys: str) -> str:
    return ", ".join(f"{key} {_fmt(figures[key], 's')}" for key in keys)


def _latency_section(results: dict[str, Any]) -> list[str]:
    single = results["single"]
    rows = [
        [
            "1 (one at a time)",
            _percentiles(single["payguard_own_work"], "p50", "p99"),
            _percentiles(single["payguard_ready"], "p50", "p95", "p99"),
            _percentiles(single["floor"], "p50"),
            _fmt(single["ratio_own_work_p50"], "x"),
            _fmt(single["ratio_ready_p50"], "x"),
        ]
    ]
    for label, burst in _all_bursts(results):
        payguard, floor = burst["payguard"], burst["floor"] or {}
        rows.append(
            [
                label,
                _fmt(payguard["own_work_seconds"], "s"),
                f"{_fmt(payguard['ready_seconds'], 's')} (last certificate signed at "
                f"{_fmt(payguard['last_certificate_issued_seconds'], 's')})",
                _fmt(floor.get("own_work_seconds"), "s"),
                _fmt(burst["ratio_own_work"], "x"),
                _fmt(burst["ratio_ready"], "x"),
            ]
        )
    return [
        "## Apply to Ready, and the floor",
        "",
        "*Own work*: every child present and status observed at the PaymentService's generation (what "
        "payguard itself does). *Ready*: `Ready=True`, which also needs the cert-manager stand-in to sign "
        "4 Certificates per service (it signs one at a time). The floor is a bare client writing the same "
        "16 children and one status patch per service, with the same concurrency. Bursts: from the first "
        "apply to the last service. payguard runs with its shipped defaults (no client-side rate limit) in "
        "every row; the 2,000 is measured last, after every other figure, and the last row repeats the 500 "
        "with py-spy attached.",
        "",
        *_table(
            [
                "PaymentServices",
                "payguard own work",
                "payguard Ready",
                "floor",
                "own work / floor",
                "Ready / floor",
            ],
            rows,
        ),
    ]


def _requests_section(results: dict[str, Any]) -> list[str]:
    rows = []
    single = results["single"]["requests_per_service"]
    rows.append(
        ["1 (one at a time)", _verbs(single["payguard"]), _verbs(single["floor"]), _verbs(single["issuer"])]
    )
    for burst in results["bursts"]:
        requests = burst["requests_per_service"]
        rows.append(
            [
                f"{burst['count']} at once",
                _verbs(requests["payguard"]),
                _verbs(requests["floor"]),
                _verbs(requests["issuer"]),
            ]
        )
    writes = single["payguard_writes"]
    return [
        "## API requests per PaymentService, apply to Ready (audit log)",
        "",
        *_table(["PaymentServices", "payguard", "floor", "cert-manager stand-in"], rows),
        "payguard's writes per PaymentService (one at a time): "
        + ", ".join(f"{key} {value}" for key, value in writes.items())
        + ".",
        "",
    ]


def _verbs(counts: dict[str, float] | None) -> str:
    if not counts:
        return "n/a"
    parts = [f"{verb} {value:g}" for verb, value in counts.items() if verb != "total"]
    return f"**{counts.get('total', 0):g}**: " + ", ".join(parts)


def _steady_state_section(results: dict[str, Any]) -> list[str]:
    drift = results["drift"]
    rows = [
        [name, figures["n"], _fmt(figures["p50"], "s"), _fmt(figures["p99"], "s"), _fmt(figures["max"], "s")]
        for name, figures in drift["by_tampering"].items()
    ]
    for label, key in (
        ("**all**", "repair_seconds"),
        ("all, queue empty (no resync running)", "repair_seconds_queue_empty"),
        ("all, queued behind a resync", "repair_seconds_behind_other_passes"),
    ):
        total = drift.get(key)
        if total and total["n"]:
            rows.append(
                [label, total["n"], _fmt(total["p50"], "s"), _fmt(total["p99"], "s"), _fmt(total["max"], "s")]
            )
    quiet_rows = [
        [
            label,
            figures["services"],
            _fmt(figures["passes"]),
            _fmt(figures["seconds"], "s"),
            figures["writes"],
            _verbs({**figures["requests_by_verb"], "total": sum(figures["requests_by_verb"].values())}),
        ]
        for label, figures in (("no-op resync", results["noop_resync"]), ("restart", results["restart"]))
        if figures
    ]
    return [
        "## Drift repair (tamper, then time until the child is back as rendered)",
        "",
        *_table(["tampering", "n", "p50", "p99", "max"], rows),
        f"Writes per repair: {_fmt(drift['writes_per_repair'])} "
        f"({', '.join(f'{k} {v}' for k, v in drift['writes_per_repair_by_resource'].items())}). "
        f"Not repaired within 20 s: {len(drift['not_repaired'])}.",
        "",
        "## Writes with nothing to change (audit log, payguard's ServiceAccount)",
        "",
        *_table(["event", "PaymentServices", "passes", "duration", "writes", "requests"], quiet_rows),
        "Duration: from the resync's first pass, or from the restart, until payguard is quiet. A restart "
        "lists every watched kind once per namespace scope; `get` is API discovery.",
        "",
    ]


def _resources_section(results: dict[str, Any]) -> list[str]:
    rows = []
    for label, burst in _all_bursts(results):
        usage = burst["payguard"]["usage"] or {}
        cpu, peak = usage.get("cpu_seconds", {}), usage.get("peak_rss_mib", {})
        floor_usage = (burst["floor"] or {}).get("usage") or {}
        rows.append(
            [
                label,
                _fmt(peak.get("payguard"), "MiB"),
                _fmt(burst["payguard"]["steady_rss_mib"], "MiB"),
                _fmt(cpu.get("payguard"), "s"),
                _fmt(burst["payguard"]["pass_seconds"], "s"),
                _fmt(cpu.get("fake-cert-manager"), "s"),
                _fmt(cpu.get("kube-apiserver"), "s"),
                _fmt(cpu.get("etcd"), "s"),
                _fmt((floor_usage.get("cpu_seconds") or {}).get("kube-apiserver"), "s"),
            ]
        )
    return [
        "## payguard's memory and CPU (from /proc), and who else used the two cores",
        "",
        *_table(
            [
                "burst",
                "payguard peak RSS",
                "steady RSS",
                "payguard CPU",
                "time in passes",
                "stand-in CPU",
                "apiserver CPU",
                "etcd CPU",
                "apiserver CPU (floor)",
            ],
            rows,
        ),
        *_footprint_lines(results.get("watched_objects") or {}),
    ]


def _footprint_lines(footprint: dict[str, Any]) -> list[str]:
    if not footprint.get("objects"):
        return []
    return [
        f"At the no-op resync payguard watched and cached {footprint['objects']} objects "
        f"({footprint['json_mib']} MiB as JSON, {footprint['managed_fields_share']:.0%} of it "
        f"`metadata.managedFields`) with {_fmt(footprint.get('payguard_rss_mib'), 'MiB')} RSS: "
        f"{_fmt(footprint.get('rss_kib_per_object'), 'KiB')} per object.",
        *_added_line(footprint),
        "",
    ]


def _added_line(footprint: dict[str, Any]) -> list[str]:
    base = footprint.get("baseline")
    if not base:
        return []
    return [
        f"Before any PaymentService (its first start, {base['objects']:.0f} objects watched) payguard held "
        f"{_fmt(base['rss_mib'], 'MiB')} RSS, interpreter and libraries included: the cache's own cost is "
        f"{_fmt(footprint.get('rss_kib_added_per_object'), 'KiB')} of RSS per object added."
    ]


def _profile_section(results: dict[str, Any]) -> list[str]:
    profile = results.get("profile")
    if not profile:
        return []
    steps = [[step, f"{share:.0%}"] for step, share in profile["steps"].items()]
    top_self = [[frame, f"{share:.0%}"] for frame, share in profile["top_self"][:10]]
    return [
        f"## Where payguard's CPU goes (py-spy, burst of {profile['burst_count']}, shipped defaults, "
        f"{profile['samples']} samples)",
        "",
        "Share of on-CPU samples with the step on the stack (steps nest, so shares overlap). Flame graph: "
        "`profile.svg`; stacks: `profile.txt`.",
        "",
        *_table(["step", "share"], steps),
        *_table(["hottest functions (self)", "share"], top_self),
    ]


# --- the plot ------------------------------------------------------------------------------------------


def _series(results: dict[str, Any]) -> dict[str, list[tuple[int, float]]]:
    single = results["single"]
    series: dict[str, list[tuple[int, float]]] = {
        "payguard Ready": [],
        "payguard own work": [],
        "floor": [],
        "payguard Ready, profiled": [],
        "payguard own work, profiled": [],
    }
    for name, value in (
        ("payguard Ready", single["payguard_ready"]["p50"]),
        ("payguard own work", single["payguard_own_work"]["p50"]),
        ("floor", single["floor"]["p50"]),
    ):
        if value is not None:
            series[name].append((1, value))
    for burst in results["bursts"]:
        for name, value in (
            ("payguard Ready", burst["payguard"]["ready_seconds"]),
            ("payguard own work", burst["payguard"]["own_work_seconds"]),
            ("floor", (burst["floor"] or {}).get("own_work_seconds")),
        ):
            if value is not None:
                series[name].append((burst["count"], value))
    profiled = results.get("profiled")
    if profiled:
        for name, value in (
            ("payguard Ready, profiled", profiled["payguard"]["ready_seconds"]),
            ("payguard own work, profiled", profiled["payguard"]["own_work_seconds"]),
        ):
            if value is not None:
                series[name].append((profiled["count"], value))
    return series


def plot_latency(results: dict[str, Any], path: Path) -> None:
    import matplotlib  # noqa: PLC0415 (a benchmark-only dependency, installed by `make bench`)

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt  # noqa: PLC0415

    figure, axes = plt.subplots(figsize=(7, 4.5), dpi=120)
    styles = {
        "payguard Ready": "o-",
        "payguard own work": "s--",
        "floor": "^:",
        "payguard Ready, profiled": "D",
        "payguard own work, profiled": "x",
    }
    for index, (name, points) in enumerate(_series(results).items()):
        if points:
            xs, ys = zip(*points, strict=True)
            axes.plot(xs, ys, styles[name], label=name, color=f"C{index}")
    axes.set_xscale("log")
    axes.set_yscale("log")
    axes.set_xlabel("PaymentServices applied at once (1: p50 of one at a time)")
    axes.set_ylabel("seconds until the last one is done")
    axes.set_title(f"payguard apply-to-Ready vs the bare-client floor ({results['machine']['nproc']} cores)")
    axes.grid(True, which="both", alpha=0.3)
    axes.legend()
    figure.tight_layout()
    figure.savefig(path)
    plt.close(figure)
