"""YOLO exported to ONNX, run by onnxruntime with numpy pre- and post-processing.

No torch and no ultralytics here: this is the light way to run YOLO in production.
The processing mirrors ultralytics' own ONNX path (letterbox with grey 114 padding,
RGB scaled to 0..1, per-class NMS on the best class of each candidate), so results
match ``UltralyticsYoloDetector`` on the checkpoint the file was exported from.
"""

from __future__ import annotations

import ast
import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import cv2
import numpy as np
import numpy.typing as npt

from imagetag.adapters.detectors._executor import (
    RgbImage,
    ThreadedDetector,
    check_thresholds,
    decode_bgr,
    distribution_version,
    file_sha256,
    unit_clip,
)
from imagetag.domain.detections import BoundingBox, Detection, DetectorInfo
from imagetag.domain.errors import DetectorUnavailable

if TYPE_CHECKING:
    import onnxruntime

logger = logging.getLogger(__name__)

FloatArray = npt.NDArray[np.float32]

_PAD_VALUE = 114  # ultralytics' letterbox grey; the models were trained with it
_DEFAULT_SIZE = 640
_MAX_CANDIDATES = 30_000  # ultralytics' max_nms: bounds NMS time on pathological outputs
_MAX_DETECTIONS = 300  # ultralytics' max_det
_CLASS_OFFSET = 7680.0  # shifts each class's boxes apart so one NMS pass is per-class


@dataclass(frozen=True, slots=True)
class _Letterbox:
    """How an image was fitted into the model input, to map boxes back."""

    scale: float
    left: int
    top: int


@dataclass(frozen=True, slots=True)
class _OnnxModel:
    session: onnxruntime.InferenceSession
    input_name: str
    input_dtype: type[np.floating[Any]]
    height: int
    width: int
    names: dict[int, str]
    end2end: bool


class OnnxYoloDetector(ThreadedDetector[_OnnxModel, RgbImage]):
    """Object detection with a YOLOv8/YOLO11 (or NMS-free YOLO26) model exported to ONNX.

    Class names and the input size come from the metadata ultralytics writes into the file.
    ``threads`` sets onnxruntime's intra-op threads (default: one per physical core).
    """

    def __init__(
        self,
        model_path: Path,
        *,
        confidence: float = 0.25,
        iou: float = 0.7,
        threads: int | None = None,
    ) -> None:
        check_thresholds(confidence, iou)
        if threads is not None and threads < 1:
            raise ValueError(f"threads must be positive, got {threads}")
        model_path = Path(model_path).expanduser()
        if not model_path.is_file():
            raise DetectorUnavailable(
                f"ONNX model not found at {model_path}; place the file there or export one "
                "with `yolo export model=yolo11n.pt format=onnx`"
            )
        super().__init__("imagetag-yolo-onnx")
        self._path = model_path
        self._confidence = confidence
        self._iou = iou
        self._threads = threads
        self._sha256 = file_sha256(model_path)
        self._library_version = (
            f"onnxruntime {distribution_version('onnxruntime', 'onnxruntime-gpu')}"
        )

    @property
    def info(self) -> DetectorInfo:
        # No input size here: it is known only once loaded, and the hash pins it anyway.
        return DetectorInfo(
            detector="yolo-onnx",
            model=self._path.name,
            library_version=self._library_version,
            model_sha256=self._sha256,
            confidence_threshold=self._confidence,
            iou_threshold=self._iou,
        )

    def _load_model(self) -> _OnnxModel:
        # Must precede the import: onnxruntime's telemetry writes under ~/.cache on import.
        os.environ.setdefault("ORT_DISABLE_TELEMETRY", "1")
        import onnxruntime

        options = onnxruntime.SessionOptions()
        options.log_severity_level = 3  # errors only; warnings about unused initialisers are noise
        if self._threads is not None:
            options.intra_op_num_threads = self._threads
        session = onnxruntime.InferenceSession(
            str(self._path), sess_options=options, providers=["CPUExecutionProvider"]
        )
        metadata = session.get_modelmeta().custom_metadata_map
        (model_input,) = session.get_inputs()
        height, width = _input_size(model_input.shape, metadata.get("imgsz"))
        model = _OnnxModel(
            session=session,
            input_name=model_input.name,
            input_dtype=_input_dtype(model_input.type),
            height=height,
            width=width,
            names=_class_names(metadata.get("names")),
            end2end=_is_end2end(metadata),
        )
        if not model.names:
            logger.warning("%s has no class names in its metadata; using class indices", self._path)
        # The first run allocates the memory arena; pay for it here.
        _run(model, np.zeros((1, 3, height, width), dtype=model.input_dtype))
        logger.info("loaded ONNX model %s (%dx%d input)", self._path, width, height)
        return model

    def _decode_sync(self, model: _OnnxModel, image: bytes) -> RgbImage:
        # The letterbox shrinks an image whose long side reaches the input's: a big JPEG
        # need not be decoded at full size for that.
        bgr = decode_bgr(image, min_long_side=max(model.height, model.width))
        return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB).astype(np.uint8, copy=False)

    def _detect_sync(self, model: _OnnxModel, rgb: RgbImage, info: DetectorInfo) -> list[Detection]:
        confidence = info.confidence_threshold if info.confidence_threshold is not None else 0.0
        iou = info.iou_threshold if info.iou_threshold is not None else self._iou
        height, width = rgb.shape[:2]
        tensor, fit = _letterbox(rgb, model.height, model.width)
        output = _run(model, tensor.astype(model.input_dtype, copy=False))
        if model.end2end:
            # NMS ran inside the graph, with the IoU threshold fixed at export.
            boxes, scores, classes = _decode_end2end(output, confidence)
        else:
            boxes, scores, classes = _decode_raw(output, confidence, len(model.names))
            keep = _nms_per_class(boxes, scores, classes, iou)
            boxes, scores, classes = boxes[keep], scores[keep], classes[keep]
        # Undo the letterbox: back to the decoded image's pixels.
        pixel_boxes = (boxes - [fit.left, fit.top, fit.left, fit.top]) / fit.scale
        return [
            Detection(
                name=model.names.get(int(class_index), f"class {int(class_index)}"),
                confidence=unit_clip(score),
                box=BoundingBox.from_pixels(*corner, width=width, height=height),
                detector=info,
            )
            for corner, score, class_index in zip(
                pixel_boxes.tolist(), scores.tolist(), classes.tolist(), strict=True
            )
        ]


def _run(model: _OnnxModel, tensor: npt.NDArray[np.floating[Any]]) -> FloatArray:
    (output, *_) = model.session.run(None, {model.input_name: tensor})
    batch = np.asarray(output, dtype=np.float32)
    return batch.reshape(batch.shape[1:])


def _input_size(shape: list[int | str | None], imgsz: str | None) -> tuple[int, int]:
    """Height and width from a fixed input shape, else from the ``imgsz`` metadata."""
    height, width = shape[2], shape[3]
    if isinstance(height, int) and isinstance(width, int):
        return height, width
    if imgsz:
        size = ast.literal_eval(imgsz)
        if isinstance(size, int):
            return size, size
        return int(size[0]), int(size[1])
    return _DEFAULT_SIZE, _DEFAULT_SIZE


def _input_dtype(onnx_type: str) -> type[np.floating[Any]]:
    # A model exported with half=True wants float16 input; one with fp16 weights behind a
    # Cast node still says tensor(float).
    if onnx_type == "tensor(float16)":
        return np.float16
    if onnx_type == "tensor(float)":
        return np.float32
    raise DetectorUnavailable(f"the model wants {onnx_type} input; expected float or float16")


def _class_names(raw: str | None) -> dict[int, str]:
    # Ultralytics writes str(dict), e.g. "{0: 'person', 1: 'bicycle'}": a literal, not JSON.
    if not raw:
        return {}
    names = ast.literal_eval(raw)
    if isinstance(names, dict):
        return {int(index): str(name) for index, name in names.items()}
    return dict(enumerate(str(name) for name in names))


def _is_end2end(metadata: dict[str, str]) -> bool:
    # Same rule as ultralytics' AutoBackend: NMS-free heads (YOLO26, YOLOv10) or NMS in the graph.
    if metadata.get("end2end", "").strip().lower() == "true":
        return True
    args = ast.literal_eval(metadata["args"]) if metadata.get("args") else {}
    return bool(isinstance(args, dict) and args.get("nms"))


def _letterbox(rgb: RgbImage, height: int, width: int) -> tuple[FloatArray, _Letterbox]:
    """Fit the image into ``height x width`` keeping its aspect, centred on grey, as NCHW 0..1."""
    source_height, source_width = rgb.shape[:2]
    scale = min(height / source_height, width / source_width)
    new_width = max(round(source_width * scale), 1)
    new_height = max(round(source_height * scale), 1)
    resized: npt.NDArray[Any] = rgb
    if (new_width, new_height) != (source_width, source_height):
        resized = cv2.resize(rgb, (new_width, new_height), interpolation=cv2.INTER_LINEAR)
    pad_x, pad_y = (width - new_width) / 2, (height - new_height) / 2
    # Ultralytics' rounding, so a pixel-exact match with its own ONNX path.
    top, left = round(pad_y - 0.1), round(pad_x - 0.1)
    canvas = np.full((height, width, 3), _PAD_VALUE, dtype=np.uint8)
    canvas[top : top + new_height, left : left + new_width] = resized
    tensor = canvas.transpose(2, 0, 1)[np.newaxis].astype(np.float32) / np.float32(255.0)
    return tensor, _Letterbox(scale=scale, left=left, top=top)


def _decode_raw(
    output: FloatArray, confidence: float, class_count: int
) -> tuple[FloatArray, FloatArray, npt.NDArray[np.int64]]:
    """Candidates from a ``[4 + classes, anchors]`` head: centre-size boxes, then class scores."""
    class_count = class_count or output.shape[0] - 4
    predictions = output[: 4 + class_count].T
    class_scores = predictions[:, 4:]
    classes = class_scores.argmax(axis=1)
    scores = class_scores[np.arange(len(classes)), classes]
    chosen = np.flatnonzero(scores > confidence)
    if len(chosen) > _MAX_CANDIDATES:
        chosen = chosen[np.argsort(-scores[chosen], kind="stable")[:_MAX_CANDIDATES]]
    centre_x, centre_y, box_width, box_height = predictions[chosen, :4].T
    boxes = np.stack(
        (
            centre_x - box_width / 2,
            centre_y - box_height / 2,
            centre_x + box_width / 2,
            centre_y + box_height / 2,
        ),
        axis=1,
    )
    return boxes, scores[chosen], classes[chosen].astype(np.int64)


def _decode_end2end(
    output: FloatArray, confidence: float
) -> tuple[FloatArray, FloatArray, npt.NDArray[np.int64]]:
    """Detections from a ``[detections, 6]`` head that already did NMS: corners, score, class."""
    kept = output[output[:, 4] > confidence][:_MAX_DETECTIONS]
    return kept[:, :4], kept[:, 4], kept[:, 5].astype(np.int64)


def _nms_per_class(
    boxes: FloatArray, scores: FloatArray, classes: npt.NDArray[np.int64], iou: float
) -> npt.NDArray[np.int64]:
    """Indices kept by greedy NMS within each class, best first, at most ``_MAX_DETECTIONS``."""
    shifted = boxes + (classes * _CLASS_OFFSET)[:, np.newaxis]
    x1, y1, x2, y2 = shifted.T
    areas = (x2 - x1) * (y2 - y1)
    order = np.argsort(-scores, kind="stable")
    keep: list[int] = []
    while order.size and len(keep) < _MAX_DETECTIONS:
        best, rest = order[0], order[1:]
        keep.append(int(best))
        overlap_width = np.clip(
            np.minimum(x2[best], x2[rest]) - np.maximum(x1[best], x1[rest]), 0, None
        )
        overlap_height = np.clip(
            np.minimum(y2[best], y2[rest]) - np.maximum(y1[best], y1[rest]), 0, None
        )
        intersection = overlap_width * overlap_height
        union = areas[best] + areas[rest] - intersection
        overlap = intersection / np.maximum(union, np.finfo(np.float32).eps)
        order = rest[overlap <= iou]
    return np.asarray(keep, dtype=np.int64)
