"""payguard: a Kubernetes operator that enforces zero-trust controls for payments workloads."""

__version__ = "0.1.0"
