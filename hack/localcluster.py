"""Owns the local Kubernetes control plane: real etcd, kube-apiserver and kube-controller-manager on loopback.

Used by `make cluster-up` / `make cluster-down`, by the pytest harness and by the benchmarks. It plays
the part envtest plays for Go operators: no kubelet, no scheduler, pods are API objects only.

    python hack/localcluster.py up [--state-dir DIR]     # idempotent; last line is KUBECONFIG=<path>
    python hack/localcluster.py down [--state-dir DIR]   # stops the processes and removes the state
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import datetime
import ipaddress
import json
import os
import signal
import socket
import ssl
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import yaml
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from kubernetes import config, dynamic

HACK_DIR = Path(__file__).resolve().parent
REPO_DIR = HACK_DIR.parent
DEFAULT_STATE_DIR = REPO_DIR / ".localcluster"
PAYGUARD_CRDS_DIR = REPO_DIR / "crds"
PROCESS_NAMES = ("etcd", "kube-apiserver", "kube-controller-manager")
READY_TIMEOUT_SECONDS = 120.0


def log(message: str) -> None:
    print(f"localcluster: {message}", file=sys.stderr, flush=True)


def pinned_versions() -> dict[str, str]:
    """Reads hack/versions.env, the one place versions are pinned."""
    versions = {}
    for raw_line in (HACK_DIR / "versions.env").read_text().splitlines():
        line = raw_line.strip()
        if line and not line.startswith("#"):
            key, _, value = line.partition("=")
            versions[key.strip()] = value.strip()
    return versions


def build_binaries() -> Path:
    """Builds (or finds cached) etcd, kube-apiserver and kube-controller-manager; returns their directory."""
    result = subprocess.run(
        ["bash", str(HACK_DIR / "build-binaries.sh")], check=True, stdout=subprocess.PIPE, text=True
    )
    return Path(result.stdout.strip().splitlines()[-1])


def go_module_dir(module: str, version: str) -> Path:
    """Downloads a pinned Go module (the proxy is our only source of upstream files) and returns its dir."""
    env = {**os.environ, "GOTOOLCHAIN": "local", "GOFLAGS": "-mod=mod"}
    result = subprocess.run(
        ["go", "mod", "download", "-json", f"{module}@{version}"],
        check=True,
        stdout=subprocess.PIPE,
        text=True,
        env=env,
        cwd=HACK_DIR,
    )
    return Path(json.loads(result.stdout)["Dir"])


def upstream_crd_files() -> list[Path]:
    """The pinned Istio and cert-manager CRD files, straight from their Go modules."""
    versions = pinned_versions()
    istio = go_module_dir("istio.io/api", versions["ISTIO_API_VERSION"])
    cert_manager = go_module_dir("github.com/cert-manager/cert-manager", versions["CERT_MANAGER_VERSION"])
    # ServiceMonitor and PrometheusRule, so the chart's optional monitoring objects are validated too.
    monitoring = go_module_dir(
        "github.com/prometheus-operator/prometheus-operator", versions["PROMETHEUS_OPERATOR_VERSION"]
    )
    monitoring_crds = monitoring / "example" / "prometheus-operator-crd"
    return [
        istio / "kubernetes" / "customresourcedefinitions.gen.yaml",
        *sorted((cert_manager / "deploy" / "crds").glob("*.yaml")),
        monitoring_crds / "monitoring.coreos.com_servicemonitors.yaml",
        monitoring_crds / "monitoring.coreos.com_prometheusrules.yaml",
    ]


def payguard_crd_files() -> list[Path]:
    return sorted(PAYGUARD_CRDS_DIR.glob("*.yaml"))


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


# --- certificates -------------------------------------------------------------------------------------


def _pem_key(key: rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


def _pem_cert(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.PEM)


@dataclass(frozen=True)
class _Issued:
    cert: x509.Certificate
    key: ec.EllipticCurvePrivateKey


def _issue(
    subject: x509.Name,
    *,
    issuer: _Issued | None,
    usages: Sequence[x509.ObjectIdentifier] = (),
    sans: Sequence[x509.GeneralName] = (),
) -> _Issued:
    key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.datetime.now(datetime.UTC)
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer.cert.subject if issuer else subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=365))
        .add_extension(x509.BasicConstraints(ca=issuer is None, path_length=None), critical=True)
    )
    if usages:
        builder = builder.add_extension(x509.ExtendedKeyUsage(list(usages)), critical=False)
    if sans:
        builder = builder.add_extension(x509.SubjectAlternativeName(list(sans)), critical=False)
    if issuer is None:
        builder = builder.add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
    cert = builder.sign(issuer.key if issuer else key, hashes.SHA256())
    return _Issued(cert, key)


def write_pki(pki: Path) -> None:
    """A throwaway CA, the apiserver's serving cert, an admin client cert and service-account keys."""
    pki.mkdir(parents=True, exist_ok=True)
    ca = _issue(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "payguard-localcluster-ca")]), issuer=None)
    serving = _issue(
        x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "kube-apiserver")]),
        issuer=ca,
        usages=[ExtendedKeyUsageOID.SERVER_AUTH],
        sans=[
            x509.DNSName("localhost"),
            x509.DNSName("kubernetes"),
            x509.DNSName("kubernetes.default"),
            x509.DNSName("kubernetes.default.svc"),
            x509.IPAddress(ipaddress.ip_address("127.0.0.1")),
            x509.IPAddress(ipaddress.ip_address("10.0.0.1")),
        ],
    )
    admin = _issue(
        x509.Name(
            [
                x509.NameAttribute(NameOID.ORGANIZATION_NAME, "system:masters"),
                x509.NameAttribute(NameOID.COMMON_NAME, "payguard-admin"),
            ]
        ),
        issuer=ca,
        usages=[ExtendedKeyUsageOID.CLIENT_AUTH],
    )
    sa_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    files = {
        "ca.crt": _pem_cert(ca.cert),
        "ca.key": _pem_key(ca.key),
        "apiserver.crt": _pem_cert(serving.cert),
        "apiserver.key": _pem_key(serving.key),
        "admin.crt": _pem_cert(admin.cert),
        "admin.key": _pem_key(admin.key),
        "sa.key": _pem_key(sa_key),
        "sa.pub": sa_key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        ),
    }
    for name, data in files.items():
        path = pki / name
        path.write_bytes(data)
        path.chmod(0o600)


def kubeconfig_document(
    *, server: str, ca_pem: bytes, user: dict[str, str], cluster_name: str = "payguard-local"
) -> dict[str, object]:
    """A kubeconfig with one cluster, one user and one current context."""
    return {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [
            {
                "name": cluster_name,
                "cluster": {
                    "server": server,
                    "certificate-authority-data": base64.b64encode(ca_pem).decode(),
                },
            }
        ],
        "users": [{"name": "user", "user": user}],
        "contexts": [{"name": cluster_name, "context": {"cluster": cluster_name, "user": "user"}}],
        "current-context": cluster_name,
    }


def install_crds(kubeconfig: Path) -> None:
    """Applies the upstream Istio and cert-manager CRDs and payguard's own, server-side, and waits."""
    documents = [
        doc
        for path in [*upstream_crd_files(), *payguard_crd_files()]
        for doc in yaml.safe_load_all(path.read_text())
        if doc and doc.get("kind") == "CustomResourceDefinition"
    ]
    client = config.new_client_from_config(config_file=str(kubeconfig))
    try:
        crds = dynamic.DynamicClient(client).resources.get(
            api_version="apiextensions.k8s.io/v1", kind="CustomResourceDefinition"
        )
        for doc in documents:
            # Server-side: two upstream CRDs exceed the client-side apply annotation limit.
            crds.server_side_apply(
                body=doc,
                name=doc["metadata"]["name"],
                field_manager="payguard-hack",
                force_conflicts=True,
            )
        deadline = time.monotonic() + READY_TIMEOUT_SECONDS
        pending = {doc["metadata"]["name"] for doc in documents}
        while pending and time.monotonic() < deadline:
            for name in sorted(pending):
                conditions = crds.get(name=name).to_dict().get("status", {}).get("conditions") or []
                if any(c["type"] == "Established" and c["status"] == "True" for c in conditions):
                    pending.discard(name)
            time.sleep(0.2 if pending else 0)
        if pending:
            raise TimeoutError(f"CRDs not established: {sorted(pending)}")
    finally:
        client.close()
    log(f"installed {len(documents)} CRDs")


# --- the cluster --------------------------------------------------------------------------------------


@dataclass
class LocalCluster:
    """A control plane whose whole state (PKI, etcd data, logs, pids, kubeconfig) lives in state_dir."""

    state_dir: Path = DEFAULT_STATE_DIR
    audit_policy: Path | None = None  # when set, the apiserver writes an audit log to state_dir/audit.log

    @property
    def kubeconfig(self) -> Path:
        return self.state_dir / "admin.kubeconfig"

    @property
    def pki(self) -> Path:
        return self.state_dir / "pki"

    @property
    def audit_log(self) -> Path:
        return self.state_dir / "audit.log"

    def _pid_file(self, name: str) -> Path:
        return self.state_dir / f"{name}.pid"

    def _log_file(self, name: str) -> Path:
        return self.state_dir / f"{name}.log"

    def server_url(self) -> str:
        return str((self.state_dir / "server").read_text().strip())

    # -- lifecycle

    def is_running(self) -> bool:
        return all(_pid_alive(self._read_pid(name)) for name in PROCESS_NAMES) and self._ready()

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
        etcd_client, etcd_peer, apiserver_port, kcm_port = (free_port() for _ in range(4))
        server = f"https://127.0.0.1:{apiserver_port}"
        (self.state_dir / "server").write_text(server)
        self._write_admin_kubeconfig(server)

        self._spawn("etcd", [str(bin_dir / "etcd"), *self._etcd_flags(client=etcd_client, peer=etcd_peer)])
        self._wait_for(f"http://127.0.0.1:{etcd_client}/health", what="etcd")
        self._spawn(
            "kube-apiserver",
            [str(bin_dir / "kube-apiserver"), *self._apiserver_flags(etcd=etcd_client, port=apiserver_port)],
        )
        self._wait_for(f"{server}/readyz", what="kube-apiserver")
        self._spawn(
            "kube-controller-manager",
            [str(bin_dir / "kube-controller-manager"), *self._controller_manager_flags(port=kcm_port)],
        )
        self._wait_for(f"https://127.0.0.1:{kcm_port}/healthz", what="kube-controller-manager", insecure=True)
        self.install_crds()
        log(f"ready at {server}")

    def down(self) -> None:
        """Stops every process (TERM, then KILL) and removes the state directory."""
        for name in reversed(PROCESS_NAMES):
            _stop(self._read_pid(name))
        if self.state_dir.exists():
            subprocess.run(["rm", "-rf", str(self.state_dir)], check=True)

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
            "--v=1",
        ]
        if self.audit_policy is not None:
            flags += [
                f"--audit-policy-file={self.audit_policy}",
                f"--audit-log-path={self.audit_log}",
                "--audit-log-format=json",
                "--audit-log-mode=blocking",
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

    def _spawn(self, name: str, argv: list[str]) -> None:
        with self._log_file(name).open("ab") as out:
            process = subprocess.Popen(
                argv, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True
            )
        self._pid_file(name).write_text(str(process.pid))

    def _read_pid(self, name: str) -> int | None:
        try:
            return int(self._pid_file(name).read_text())
        except (OSError, ValueError):
            return None

    def _ready(self) -> bool:
        try:
            return _get(f"{self.server_url()}/readyz", self._ssl_context()) == 200
        except (OSError, urllib.error.URLError):
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

    def _wait_for(self, url: str, *, what: str, insecure: bool = False) -> None:
        context = self._ssl_context(insecure=insecure) if url.startswith("https") else None
        deadline = time.monotonic() + READY_TIMEOUT_SECONDS
        while time.monotonic() < deadline:
            for name in PROCESS_NAMES:
                pid = self._read_pid(name)
                if pid is not None and not _pid_alive(pid):
                    raise RuntimeError(
                        f"{name} exited; see {self._log_file(name)}:\n{_tail(self._log_file(name))}"
                    )
            with contextlib.suppress(OSError, urllib.error.URLError):
                if _get(url, context) == 200:
                    return
            time.sleep(0.2)
        raise TimeoutError(f"{what} not ready at {url} after {READY_TIMEOUT_SECONDS}s")


def _get(url: str, context: ssl.SSLContext | None) -> int:
    try:
        with urllib.request.urlopen(url, context=context, timeout=5) as response:
            return int(response.status)
    except urllib.error.HTTPError as error:
        return int(error.code)


def _pid_alive(pid: int | None) -> bool:
    if pid is None:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # A zombie child still answers kill(0); treat it as gone.
    with contextlib.suppress(OSError):
        if Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0] == "Z":
            return False
    return True


def _stop(pid: int | None, *, grace_seconds: float = 10.0) -> None:
    if not _pid_alive(pid):
        return
    assert pid is not None
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pid, signal.SIGTERM)
    deadline = time.monotonic() + grace_seconds
    while _pid_alive(pid) and time.monotonic() < deadline:
        with contextlib.suppress(ChildProcessError):
            os.waitpid(pid, os.WNOHANG)
        time.sleep(0.1)
    if _pid_alive(pid):
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pid, signal.SIGKILL)
    with contextlib.suppress(ChildProcessError):
        os.waitpid(pid, 0)


def _tail(path: Path, lines: int = 30) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("command", choices=["up", "down", "build", "install-crds"])
    parser.add_argument(
        "--state-dir", type=Path, default=Path(os.environ.get("PAYGUARD_CLUSTER_DIR", DEFAULT_STATE_DIR))
    )
    args = parser.parse_args(argv)
    cluster = LocalCluster(state_dir=args.state_dir.resolve())
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
