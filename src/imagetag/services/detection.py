"""Running a detector so that its failure is recorded, never raised past the image."""

from __future__ import annotations

import logging
from datetime import datetime

from imagetag.domain.detections import Thresholds
from imagetag.domain.errors import DetectionFailed, InvalidInput
from imagetag.domain.images import DetectionRun, DetectionStatus
from imagetag.domain.principals import Actor
from imagetag.ports.detector import Detector

logger = logging.getLogger(__name__)


async def run_detector(
    detector: Detector,
    data: bytes,
    requested_by: Actor,
    now: datetime,
    *,
    image_ref: str,
    thresholds: Thresholds | None = None,
) -> tuple[DetectionRun, DetectionFailed | None]:
    """Detect objects in ``data``; a failure comes back as a failed run and the error.

    Any exception of the detector counts as a failure: a faulty detector must not cost
    the caller an image that was already accepted.
    """
    info = detector.info.with_thresholds(thresholds)
    try:
        detections = tuple(await detector.detect(data, thresholds))
    except InvalidInput:
        # A threshold this detector does not have: the caller's to fix, nothing to record.
        raise
    except DetectionFailed as error:
        logger.warning("detection failed for image %s: %s", image_ref, error)
        failure = error
    except Exception as error:
        logger.exception("detector raised unexpectedly for image %s", image_ref)
        failure = DetectionFailed(f"the detector failed unexpectedly ({type(error).__name__})")
    else:
        run = DetectionRun(
            detector=info,
            status=DetectionStatus.SUCCEEDED,
            requested_by=requested_by,
            ran_at=now,
            detections=detections,
        )
        return run, None
    failed = DetectionRun(
        detector=info,
        status=DetectionStatus.FAILED,
        requested_by=requested_by,
        ran_at=now,
        error=str(failure) or type(failure).__name__,
    )
    return failed, failure
