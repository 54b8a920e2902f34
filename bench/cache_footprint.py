"""What the cache holds per watched object, other than pods (see bench/pod_cache.py): a settled checkout's
children, its PaymentService, CertificateRequests with their CSR and CA, an issuer, Namespace and
ServiceAccounts, as the API server serves them (with managedFields) and, in a second round, as kubectl
leaves them too (a last-applied copy; Istio's status on its policies). Each object is parsed from JSON
once per copy, as a watch event is, and put in an ObjectCache; tracemalloc counts what stays allocated.
"whole" keeps every object minus managedFields, as the cache did before issue 19.

A unit-level benchmark. Run `.venv/bin/python -m bench.cache_footprint`; the result is written to
bench/results/cache-footprint.json with the commit it measured.
"""

from __future__ import annotations

import gc
import json
import logging
import subprocess
import sys
import tracemalloc
from pathlib import Path
from typing import Any

from bench import REPO
from cache_world import fattened, plain, whole_only, world_objects
from payguard import cache as cache_module
from payguard.cache import ObjectCache

RESULTS = Path(__file__).resolve().parent / "results" / "cache-footprint.json"
COPIES = 300


def served(body: dict[str, Any]) -> dict[str, Any]:
    """With the managedFields the API server serves."""
    metadata = body["metadata"]
    fields = [{"manager": m, "operation": "Apply", "fieldsV1": {"f:spec": {"f:x": {}}}} for m in ("a", "b")]
    return {**body, "metadata": {**metadata, "managedFields": fields}}


def held_kib_per_object(texts: list[tuple[str, str]], *, keep_whole: bool) -> float:
    original = cache_module.slim
    if keep_whole:
        cache_module.slim = whole_only
    try:
        gc.collect()
        tracemalloc.start()
        cache, count = ObjectCache(), 0
        for copy in range(COPIES):
            for kind, text in texts:
                body = json.loads(text)
                body["metadata"]["name"] += f"-{copy}"
                body["metadata"]["uid"] = f"uid-{copy}-{count}"
                cache.put(kind, body)
                count += 1
        held, _ = tracemalloc.get_traced_memory()
        tracemalloc.stop()
    finally:
        cache_module.slim = original
    return round(held / count / 1024, 2)


def main() -> int:
    logging.disable(logging.WARNING)
    body, objects = world_objects()
    rows = []
    for label, prepare in (("as served", plain), ("with kubectl's last-applied", fattened)):
        chosen = [served(prepare(o)) for o in [body, *objects] if o["kind"] != "Pod"]
        texts = [(o["kind"], json.dumps(o)) for o in chosen]
        rows.append(
            {
                "objects": label,
                "kinds": sorted({kind for kind, _ in texts}),
                "json_kib_per_object": round(sum(len(t) for _, t in texts) / len(texts) / 1024, 2),
                "whole_kib_per_object": held_kib_per_object(texts, keep_whole=True),
                "slim_kib_per_object": held_kib_per_object(texts, keep_whole=False),
            }
        )
    for row in rows:
        print(json.dumps(row))
    result = {
        "commit": _git("rev-parse", "--short", "HEAD"),
        "uncommitted_operator_changes_not_measured": bool(_git("status", "--porcelain", "--", "operator")),
        "python": sys.version.split()[0],
        "copies": COPIES,
        "rows": rows,
    }
    RESULTS.write_text(json.dumps(result, indent=2) + "\n")
    print(f"written to {RESULTS}")
    return 0


def _git(*args: str) -> str:
    done = subprocess.run(["git", *args], cwd=REPO, capture_output=True, text=True, check=False)
    return done.stdout.strip()


if __name__ == "__main__":
    raise SystemExit(main())
