"""Running a detector so that its failure is recorded, never raised past the image."""

from __future__ import annotations

import asyncio
import logging
from datetime import datetime, timedelta

from imagetag.domain.detections import Thresholds
from imagetag.domain.errors import (
    DetectionFailed,
    DetectorUnavailable,
    InvalidInput,
    UnsupportedImage,
)
from imagetag.domain.images import DetectionRun, DetectionStatus
from imagetag.domain.principals import Actor
from imagetag.ports.detector import DecodedImage, Detector

logger = logging.getLogger(__name__)


async def run_detector(
    detector: Detector,
    data: bytes | DecodedImage,
    requested_by: Actor,
    now: datetime,
    *,
    image_ref: str,
    thresholds: Thresholds | None = None,
    time_limit: timedelta | None = None,
) -> tuple[DetectionRun, DetectionFailed | None]:
    """Detect objects in ``data`` (or the detector's decode of it); a failure comes back
    as a failed run and the error.

    Any exception of the detector counts as a failure: a faulty detector must not cost
    the caller an image that was already accepted. So does taking longer than
    ``time_limit``: the caller gets an answer (503) while the model may still finish.
    """
    info = detector.info.with_thresholds(thresholds)
    try:
        seconds = time_limit.total_seconds() if time_limit is not None else None
        # A timeout scope rather than wait_for: no second task per image.
        async with asyncio.timeout(seconds):
            detections = tuple(await detector.detect(data, thresholds))
    except InvalidInput:
        # A threshold this detector does not have: the caller's to fix, nothing to record.
        raise
    except TimeoutError:
        logger.warning("detection timed out for image %s", image_ref)
        within = f" within {time_limit.total_seconds():g} s" if time_limit is not None else ""
        failure: DetectionFailed = DetectorUnavailable(f"the detector did not answer{within}")
    except DetectionFailed as error:
        logger.warning("detection failed for image %s: %s", image_ref, error)
        failure = error
    except UnsupportedImage as error:
        # Bytes accepted before that this detector cannot decode: its failure, not the
        # caller's.
        logger.warning("detection failed for image %s: %s", image_ref, error)
        failure = DetectionFailed(str(error))
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
