"""Owns the local Kubernetes control plane: real etcd, kube-apiserver and kube-controller-manager on loopback,
and (cert_manager=True, as `up` from the command line) the real cert-manager controller with a CA issuer.

Used by `make cluster-up` / `make cluster-down`, by the pytest harness, the chaos tests and the benchmarks.
It plays the part envtest plays for Go operators: no kubelet, no scheduler, pods are API objects only.

    python hack/localcluster.py up [--state-dir DIR]     # idempotent; last line is KUBECONFIG=<path>
    python hack/localcluster.py down [--state-dir DIR]   # stops the processes and removes the state

The ports and exact command lines chosen at `up` are kept in DIR/components.json, so any LocalCluster for
the same DIR can stop and restart one component in place (same flags, same port: clients keep working),
and write to etcd behind the API server's back.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import socket
import ssl
import subprocess
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from kubernetes import config

import localcertmanager
import localetcd
import localprocess
from localassets import (
    HACK_DIR,
    PAYGUARD_CRDS_DIR,
    READY_TIMEOUT_SECONDS,
    REPO_DIR,
    build_binaries,
    go_module_dir,
    install_crds,
    log,
    payguard_crd_files,
    pinned_versions,
    upstream_crd_files,
)
from localetcd import ETCD_PREFIX, EtcdError, EtcdGateway
from localpki import kubeconfig_document, write_pki

__all__ = [
    "CERT_MANAGER",
    "DEFAULT_STATE_DIR",
    "ETCD_PREFIX",
    "HACK_DIR",
    "PAYGUARD_CRDS_DIR",
    "PROCESS_NAMES",
    "READY_TIMEOUT_SECONDS",
    "REPO_DIR",
    "EtcdError",
    "LocalCluster",
    "build_binaries",
    "free_port",
    "go_module_dir",
    "install_crds",
    "kubeconfig_document",
    "log",
    "payguard_crd_files",
    "pinned_versions",
    "upstream_crd_files",
    "write_pki",
]

DEFAULT_STATE_DIR = REPO_DIR / ".localcluster"
PROCESS_NAMES = ("etcd", "kube-apiserver", "kube-controller-manager")  # in start order
CERT_MANAGER = localcertmanager.CONTROLLER  # started last, only when LocalCluster.cert_manager


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class LocalCluster:
    """A control plane whose whole state (PKI, etcd data, logs, pids, kubeconfig) lives in state_dir."""

    state_dir: Path = DEFAULT_STATE_DIR
    audit_policy: Path | None = None  # when set, the apiserver writes an audit log to state_dir/audit.log
    cert_manager: bool = False  # when set, also runs the cert-manager controller and a CA ClusterIssuer

    @property
    def process_names(self) -> tuple[str, ...]:
        return (*PROCESS_NAMES, CERT_MANAGER) if self.cert_manager else PROCESS_NAMES

    @property
    def kubeconfig(self) -> Path:
        return self.state_dir / "admin.kubeconfig"

    @property
    def pki(self) -> Path:
        return self.state_dir / "pki"

    @property
    def audit_log(self) -> Path:  # written only with an audit_policy
        return self.state_dir / "audit.log"

    @property
    def components_file(self) -> Path:
        """Ports and command lines chosen at up(), for restarting a component exactly as it was."""
        return self.state_dir / "components.json"

    def _pid_file(self, name: str) -> Path:
        return self.state_dir / f"{name}.pid"

    def _log_file(self, name: str) -> Path:
        return self.state_dir / f"{name}.log"

    def server_url(self) -> str:
        return str((self.state_dir / "server").read_text().strip())

    def ports(self) -> dict[str, int]:
        """The loopback ports chosen at up(): etcd, etcd-peer and one per process."""
        return {name: int(port) for name, port in self._components()["ports"].items()}

    # -- lifecycle

    def is_running(self) -> bool:
        alive = all(localprocess.pid_alive(self._read_pid(name)) for name in self.process_names)
        return alive and self._ready()

    def up(self) -> None:
        """Starts the control plane and installs the CRDs; does nothing if it is already running."""
        if self.kubeconfig.exists() and self.is_running():
            log(f"already running at {self.server_url()}")
            self.install_crds()
            return
        self.down()
        bin_dir = build_binaries()
        self.state_dir.mkdir(parents=True, exist_ok=True)
        write_pki(self.pki)
        ports = {name: free_port() for name in ("etcd", "etcd-peer", *self.process_names[1:])}
        server = f"https://127.0.0.1:{ports['kube-apiserver']}"
        (self.state_dir / "server").write_text(server)
        self._write_admin_kubeconfig(server)
        argv = {
            "etcd": [str(bin_dir / "etcd"), *self._etcd_flags(client=ports["etcd"], peer=ports["etcd-peer"])],
            "kube-apiserver": [
                str(bin_dir / "kube-apiserver"),
                *self._apiserver_flags(etcd=ports["etcd"], port=ports["kube-apiserver"]),
            ],
            "kube-controller-manager": [
                str(bin_dir / "kube-controller-manager"),
                *self._controller_manager_flags(port=ports["kube-controller-manager"]),
            ],
        }
        if self.cert_manager:
            argv[CERT_MANAGER] = localcertmanager.controller_argv(self.kubeconfig, ports[CERT_MANAGER])
        self.components_file.write_text(json.dumps({"ports": ports, "argv": argv}, indent=2) + "\n")
        for name in PROCESS_NAMES:
            self.start_component(name)
        self.install_crds()
        if self.cert_manager:  # after the CRDs: its informers need them
            self.start_component(CERT_MANAGER)
            localcertmanager.install_ca_issuer(self.kubeconfig)
        log(f"ready at {server}")

    def down(self) -> None:
        """Stops every process (TERM, then KILL) and removes the state directory."""
        for name in reversed((*PROCESS_NAMES, CERT_MANAGER)):
            localprocess.stop(self._read_pid(name))
        if self.state_dir.exists():
            subprocess.run(["rm", "-rf", str(self.state_dir)], check=True)

    # -- faults: one component at a time, same flags and port

    def stop_component(self, name: str, *, kill: bool = False) -> None:
        """Stops one component: SIGTERM (graceful; SIGKILL after 10s), or SIGKILL at once when kill."""
        self._check_name(name)
        localprocess.stop(self._read_pid(name), kill=kill)
        self._pid_file(name).unlink(missing_ok=True)

    def start_component(self, name: str) -> None:
        """(Re)starts one component with the command line and port chosen at up(), and waits until it is
        ready: etcd's /health, the apiserver's /readyz, the controller manager's /healthz. After etcd, also
        waits for a running apiserver's /readyz, so the API is usable again when this returns.
        Does nothing but wait when the component is already running."""
        self._check_name(name)
        if not localprocess.pid_alive(self._read_pid(name)):
            pid = localprocess.spawn(self._components()["argv"][name], self._log_file(name))
            self._pid_file(name).write_text(str(pid))
        self._wait_ready(name)
        if name == "etcd" and localprocess.pid_alive(self._read_pid("kube-apiserver")):
            self._wait_ready("kube-apiserver")

    # -- etcd, behind the API server's back (works while the apiserver is stopped)

    object_key = staticmethod(localetcd.object_key)

    def etcd(self) -> EtcdGateway:
        return EtcdGateway(f"http://127.0.0.1:{self.ports()['etcd']}")

    def etcd_keys(self, prefix: str = ETCD_PREFIX + "/") -> list[str]:
        return self.etcd().keys(prefix)  # sorted

    def etcd_delete(self, key: str) -> int:
        return self.etcd().delete(key)  # the number deleted: 0 or 1

    def etcd_revision(self) -> int:
        return self.etcd().revision()

    def etcd_compact(self, revision: int | None = None) -> int:
        """Physically compacts etcd history up to revision (default: current); returns the revision.

        A running apiserver still serves watches from older resourceVersions out of its watch cache; they
        get 410 Gone once the apiserver has restarted (its cache then starts at the current revision), and
        reads at an exact compacted resourceVersion, which go to etcd, get 410 too."""
        return self.etcd().compact(revision)

    # -- CRDs

    def install_crds(self) -> None:
        install_crds(self.kubeconfig)

    @contextlib.contextmanager
    def api_client(self) -> Iterator[object]:
        """A kubernetes.client.ApiClient logged in as the cluster admin."""
        client = config.new_client_from_config(config_file=str(self.kubeconfig))
        try:
            yield client
        finally:
            client.close()

    # -- internals

    def _components(self) -> dict[str, Any]:
        try:
            return dict(json.loads(self.components_file.read_text()))
        except FileNotFoundError:
            raise RuntimeError(f"no control plane in {self.state_dir}: run up() first") from None

    def _check_name(self, name: str) -> None:
        if name not in self.process_names:
            raise ValueError(f"unknown component {name!r}; expected one of {self.process_names}")

    def _write_admin_kubeconfig(self, server: str) -> None:
        document = kubeconfig_document(
            server=server,
            ca_pem=(self.pki / "ca.crt").read_bytes(),
            user={
                "client-certificate": str(self.pki / "admin.crt"),
                "client-key": str(self.pki / "admin.key"),
            },
        )
        self.kubeconfig.write_text(yaml.safe_dump(document))
        self.kubeconfig.chmod(0o600)

    def _etcd_flags(self, *, client: int, peer: int) -> list[str]:
        return [
            "--name=default",
            f"--data-dir={self.state_dir / 'etcd'}",
            # Plain http on loopback: the apiserver and the JSON gateway (localetcd) need no client certs.
            f"--listen-client-urls=http://127.0.0.1:{client}",
            f"--advertise-client-urls=http://127.0.0.1:{client}",
            f"--listen-peer-urls=http://127.0.0.1:{peer}",
            f"--initial-advertise-peer-urls=http://127.0.0.1:{peer}",
            f"--initial-cluster=default=http://127.0.0.1:{peer}",
            # A throwaway test store: durability is not worth the fsync latency.
            "--unsafe-no-fsync",
            "--log-level=warn",
        ]

    def _apiserver_flags(self, *, etcd: int, port: int) -> list[str]:
        pki = self.pki
        flags = [
            f"--etcd-servers=http://127.0.0.1:{etcd}",
            f"--etcd-prefix={ETCD_PREFIX}",  # the default, explicit because localetcd.object_key relies on it
            "--bind-address=127.0.0.1",
            "--advertise-address=127.0.0.1",
            f"--secure-port={port}",
            f"--cert-dir={pki}",
            f"--tls-cert-file={pki / 'apiserver.crt'}",
            f"--tls-private-key-file={pki / 'apiserver.key'}",
            f"--client-ca-file={pki / 'ca.crt'}",
            "--authorization-mode=RBAC",
            f"--service-account-key-file={pki / 'sa.pub'}",
            f"--service-account-signing-key-file={pki / 'sa.key'}",
            "--service-account-issuer=https://kubernetes.default.svc.cluster.local",
            "--api-audiences=https://kubernetes.default.svc.cluster.local",
            "--service-cluster-ip-range=10.0.0.0/24",
            "--allow-privileged=true",
            "--endpoint-reconciler-type=none",
            # On SIGTERM, answer 429 + Retry-After while in-flight requests drain, then give open watches 2s
            # (not --request-timeout's 60s): a graceful stop_component() takes seconds, as down() does.
            "--shutdown-send-retry-after=true",
            "--v=1",
        ]
        if self.audit_policy is not None:
            flags += [
                f"--audit-policy-file={self.audit_policy}",
                f"--audit-log-path={self.audit_log}",
                "--audit-log-format=json",
                "--audit-log-mode=blocking",
                # Never rotated: readers read one file, and 0 would mean the logger's 100 MB default (a
                # full bench with 2,000 PaymentServices writes more, and lost its first hour's requests).
                "--audit-log-maxsize=1000000",
            ]
        return flags

    def _controller_manager_flags(self, *, port: int) -> list[str]:
        return [
            f"--kubeconfig={self.kubeconfig}",
            f"--authentication-kubeconfig={self.kubeconfig}",
            f"--authorization-kubeconfig={self.kubeconfig}",
            "--bind-address=127.0.0.1",
            f"--secure-port={port}",
            f"--cert-dir={self.state_dir / 'kcm-certs'}",
            # Only what tests rely on: owner-reference garbage collection, namespace deletion, default SAs.
            "--controllers=garbage-collector-controller,namespace-controller,serviceaccount-controller",
            "--leader-elect=false",
            "--use-service-account-credentials=false",
            f"--root-ca-file={self.pki / 'ca.crt'}",
            "--v=1",
        ]

    def _read_pid(self, name: str) -> int | None:
        try:
            return int(self._pid_file(name).read_text())
        except (OSError, ValueError):
            return None

    def _ready(self) -> bool:
        try:
            return localprocess.http_status(f"{self.server_url()}/readyz", self._ssl_context()) == 200
        except OSError:  # URLError is an OSError
            return False

    def _ssl_context(self, *, insecure: bool = False) -> ssl.SSLContext:
        if insecure:
            # Only for kube-controller-manager's self-signed healthz on loopback.
            context = ssl.create_default_context()
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE
            return context
        context = ssl.create_default_context(cafile=str(self.pki / "ca.crt"))
        context.load_cert_chain(str(self.pki / "admin.crt"), str(self.pki / "admin.key"))
        return context

    def _wait_ready(self, name: str) -> None:
        port = self.ports()[name]
        url, context = {
            "etcd": (f"http://127.0.0.1:{port}/health", None),
            "kube-apiserver": (f"https://127.0.0.1:{port}/readyz", self._ssl_context()),
            "kube-controller-manager": (
                f"https://127.0.0.1:{port}/healthz",
                self._ssl_context(insecure=True),
            ),
            CERT_MANAGER: (f"http://127.0.0.1:{port}/healthz", None),
        }[name]
        localprocess.wait_for_ok(
            url,
            what=name,
            context=context,
            timeout_seconds=READY_TIMEOUT_SECONDS,
            check_alive=self._check_alive,
        )

    def _check_alive(self) -> None:
        """Raises when a started component (one with a pid file) has exited, with the end of its log."""
        for name in self.process_names:
            pid = self._read_pid(name)
            if pid is not None and not localprocess.pid_alive(pid):
                log_file = self._log_file(name)
                raise RuntimeError(f"{name} exited; see {log_file}:\n{localprocess.tail(log_file)}")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("command", choices=["up", "down", "build", "install-crds"])
    parser.add_argument(
        "--state-dir", type=Path, default=Path(os.environ.get("PAYGUARD_CLUSTER_DIR", DEFAULT_STATE_DIR))
    )
    args = parser.parse_args(argv)
    # `make cluster-up` and `make demo` get the real cert-manager controller with ClusterIssuer payments-ca.
    cluster = LocalCluster(state_dir=args.state_dir.resolve(), cert_manager=True)
    if args.command == "build":
        print(build_binaries())
    elif args.command == "up":
        cluster.up()
        print(f"KUBECONFIG={cluster.kubeconfig}")
    elif args.command == "install-crds":
        # Into the cluster in $KUBECONFIG when set (kind, say), else into the local control plane.
        install_crds(Path(os.environ.get("KUBECONFIG") or cluster.kubeconfig))
    else:
        cluster.down()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
