"""Owns the security posture around a PaymentService's workloads: mTLS, least privilege and certificates."""
