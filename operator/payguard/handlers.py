"""Owns the kopf handler registrations: thin triggers that hand every event to the reconcile pass."""

from __future__ import annotations

import logging
from typing import Any

import kopf

from payguard import settings


@kopf.on.startup()  # type: ignore[untyped-decorator]
def configure(settings_: kopf.OperatorSettings, **_: Any) -> None:
    """Moves kopf's finalizer and annotations to the payguard.dev domain and keeps its logs quiet."""
    settings_.persistence.finalizer = settings.FINALIZER
    settings_.persistence.progress_storage = kopf.AnnotationsProgressStorage(prefix=settings.ANNOTATION_PREFIX)
    settings_.persistence.diffbase_storage = kopf.AnnotationsDiffBaseStorage(
        prefix=settings.ANNOTATION_PREFIX, key="last-handled-configuration"
    )
    settings_.posting.level = logging.WARNING


@kopf.on.resume(settings.GROUP, settings.VERSION, settings.PLURAL)  # type: ignore[untyped-decorator]
@kopf.on.create(settings.GROUP, settings.VERSION, settings.PLURAL)  # type: ignore[untyped-decorator]
@kopf.on.update(settings.GROUP, settings.VERSION, settings.PLURAL)  # type: ignore[untyped-decorator]
def observe(namespace: str, name: str, logger: logging.Logger, **_: Any) -> None:
    """Placeholder trigger until the reconcile pass lands: records that the PaymentService was seen."""
    logger.info("Observed PaymentService %s/%s", namespace, name)
