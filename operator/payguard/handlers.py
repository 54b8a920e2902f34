"""Owns the kopf handler registrations: thin triggers that hand every event to the reconcile pass."""

from __future__ import annotations

import logging
from typing import Any

import kopf

from payguard.settings import ANNOTATION_PREFIX, FINALIZER, GROUP, PLURAL, VERSION


@kopf.on.startup()
def configure(settings: kopf.OperatorSettings, **_: Any) -> None:
    """Moves kopf's finalizer and annotations to the payguard.dev domain and keeps its logs quiet."""
    settings.persistence.finalizer = FINALIZER
    settings.persistence.progress_storage = kopf.AnnotationsProgressStorage(prefix=ANNOTATION_PREFIX)
    settings.persistence.diffbase_storage = kopf.AnnotationsDiffBaseStorage(
        prefix=ANNOTATION_PREFIX, key="last-handled-configuration"
    )
    settings.posting.level = logging.WARNING


@kopf.on.resume(GROUP, VERSION, PLURAL)
@kopf.on.create(GROUP, VERSION, PLURAL)
@kopf.on.update(GROUP, VERSION, PLURAL)
def observe(namespace: str | None, name: str, logger: kopf.Logger, **_: Any) -> None:
    """Placeholder trigger until the reconcile pass lands: records that the PaymentService was seen."""
    logger.info("Observed PaymentService %s/%s", namespace, name)
