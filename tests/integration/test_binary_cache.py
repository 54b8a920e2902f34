"""The Kubernetes binaries are built once per pinned version and reused after."""

from __future__ import annotations

import subprocess
from pathlib import Path

from localcluster import HACK_DIR, pinned_versions


def test_second_build_reuses_the_cached_binaries() -> None:
    # `make test` runs the build before pytest, so this is at least the second run: it must build nothing.
    result = subprocess.run(
        ["bash", str(HACK_DIR / "build-binaries.sh")], check=True, capture_output=True, text=True, timeout=120
    )
    bin_dir = Path(result.stdout.strip())
    assert "building" not in result.stderr, result.stderr
    assert pinned_versions()["KUBERNETES_VERSION"] in str(bin_dir)
    for binary in ("etcd", "kube-apiserver", "kube-controller-manager"):
        assert (bin_dir / binary).is_file()


def test_second_cert_manager_build_reuses_the_cached_controller_keyed_by_version_and_main() -> None:
    result = subprocess.run(
        ["bash", str(HACK_DIR / "build-cert-manager.sh")],
        check=True,
        capture_output=True,
        text=True,
        timeout=120,
    )
    binary = Path(result.stdout.strip())
    assert "building" not in result.stderr, result.stderr
    assert f"cert-manager-{pinned_versions()['CERT_MANAGER_VERSION']}-" in str(binary)
    assert binary.is_file()
