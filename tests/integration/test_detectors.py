"""The real detectors on real photos and real weights, offline: what each one does of its
own. What every detector promises is in tests/contract."""

from __future__ import annotations

import asyncio
import hashlib
import io
import json
import os
import shutil
import socket
import subprocess
import sys
import typing
from collections.abc import Iterator
from pathlib import Path

import pytest
from PIL import Image

from imagetag.adapters.detectors._executor import ThreadedDetector
from imagetag.adapters.detectors.opencv_cascade import OpenCvCascadeDetector
from imagetag.adapters.detectors.ultralytics_env import configure_ultralytics_offline
from imagetag.adapters.detectors.yolo_onnx import OnnxYoloDetector
from imagetag.adapters.detectors.yolo_torch import UltralyticsYoloDetector
from imagetag.domain.detections import BoundingBox, Detection, Thresholds
from imagetag.domain.errors import DetectionFailed, DetectorUnavailable, InvalidInput
from tests.support.assets import fall_weights_onnx, fall_weights_pt, sample_image_paths

# Standing people each photo holds that the fall model reliably reports as "normal".
MIN_NORMAL = {"bus.jpg": 3, "zidane.jpg": 2}


def image_bytes(name: str) -> bytes:
    return sample_image_paths()[name].read_bytes()


def sha256_of(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def iou(a: BoundingBox, b: BoundingBox) -> float:
    width = max(0.0, min(a.x_max, b.x_max) - max(a.x_min, b.x_min))
    height = max(0.0, min(a.y_max, b.y_max) - max(a.y_min, b.y_min))
    intersection = width * height
    area_a = (a.x_max - a.x_min) * (a.y_max - a.y_min)
    area_b = (b.x_max - b.x_min) * (b.y_max - b.y_min)
    return intersection / (area_a + area_b - intersection)


def by_position(detections: list[Detection]) -> list[Detection]:
    return sorted(
        detections, key=lambda found: (found.box.x_min, found.box.y_min) if found.box else (0, 0)
    )


def assert_same_findings(ours: list[Detection], theirs: list[Detection]) -> None:
    assert len(ours) == len(theirs)
    for mine, other in zip(by_position(ours), by_position(theirs), strict=True):
        assert mine.name == other.name
        assert mine.box is not None
        assert other.box is not None
        assert iou(mine.box, other.box) > 0.9
        assert mine.confidence == pytest.approx(other.confidence, abs=0.05)


def assert_sane(detections: list[Detection], *, min_confidence: float) -> None:
    for found in detections:
        assert min_confidence <= found.confidence <= 1.0
        assert found.box is not None
        # BoundingBox already enforces 0..1 and ordered corners; a real object also has area.
        assert found.box.x_max - found.box.x_min > 0.01
        assert found.box.y_max - found.box.y_min > 0.01


@pytest.fixture(scope="session")
def ultralytics_config_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("ultralytics-config")


@pytest.fixture(scope="module")
def torch_detector(ultralytics_config_dir: Path) -> Iterator[UltralyticsYoloDetector]:
    # The square letterbox: the same pixels as the fixed-shape ONNX model, so they agree.
    detector = UltralyticsYoloDetector(
        fall_weights_pt(), config_dir=ultralytics_config_dir, square_letterbox=True
    )
    yield detector
    detector.close()


@pytest.fixture(scope="module")
def own_padding_detector(ultralytics_config_dir: Path) -> Iterator[UltralyticsYoloDetector]:
    # Ultralytics' own minimal padding, as imagetag runs YOLO by default.
    detector = UltralyticsYoloDetector(fall_weights_pt(), config_dir=ultralytics_config_dir)
    yield detector
    detector.close()


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(MIN_NORMAL))
async def test_yolo_on_torch_with_its_own_padding_finds_the_same_people(
    own_padding_detector: UltralyticsYoloDetector, name: str
) -> None:
    found = await own_padding_detector.detect(image_bytes(name))

    assert sum(detection.name == "normal" for detection in found) >= MIN_NORMAL[name]
    assert_sane(found, min_confidence=0.25)
    assert ("letterbox", "minimal") in own_padding_detector.info.parameters


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(MIN_NORMAL))
async def test_yolo_on_torch_finds_what_yolo_predict_finds(
    own_padding_detector: UltralyticsYoloDetector, ultralytics_config_dir: Path, name: str
) -> None:
    from ultralytics.models import YOLO

    found = await own_padding_detector.detect(image_bytes(name))
    configure_ultralytics_offline(ultralytics_config_dir)
    model = YOLO(str(fall_weights_pt()))
    # yolo predict's own reading: cv2.imread, whole (zidane.jpg's half-scale read by the
    # adapter is checked against its full pixels elsewhere).
    (result,) = model.predict(
        sample_image_paths()[name], imgsz=640, conf=0.25, iou=0.7, rect=True, verbose=False
    )
    theirs = typing.cast("typing.Any", result).boxes

    # imagetag keeps object names case-folded.
    names = [model.names[int(index)].casefold() for index in theirs.cls.tolist()]
    if name == "bus.jpg":  # read whole by both: the very same pixels
        ours = sorted((d.name, round(d.confidence, 4)) for d in found)
        assert ours == sorted(
            (found_name, round(score, 4))
            for found_name, score in zip(names, theirs.conf.tolist(), strict=True)
        )
        boxes = sorted(
            (round(d.box.x_min * 810), round(d.box.y_min * 1080)) for d in found if d.box
        )
        assert boxes == sorted((round(x), round(y)) for x, y, _, _ in theirs.xyxy.tolist())
    assert sorted(d.name for d in found) == sorted(names)


@pytest.mark.slow
def test_yolo_on_torch_runs_on_every_core_once_loaded(ultralytics_config_dir: Path) -> None:
    import torch

    # Ultralytics sets torch to one core less when it builds its predictor, while loading.
    detector = UltralyticsYoloDetector(fall_weights_pt(), config_dir=ultralytics_config_dir)
    try:
        detector.load()  # here on this thread, as warm_up() does on the inference thread
        assert torch.get_num_threads() == len(os.sched_getaffinity(0))
    finally:
        detector.close()


@pytest.mark.slow
async def test_yolo_on_torch_calls_predict_only_to_build_its_predictor(
    ultralytics_config_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from ultralytics.engine.model import Model

    detector = UltralyticsYoloDetector(fall_weights_pt(), config_dir=ultralytics_config_dir)
    try:
        await detector.warm_up()

        def no_more_predict(*args: object, **kwargs: object) -> typing.NoReturn:
            raise AssertionError("YOLO.predict called after the predictor was built")

        # Each image then runs the predictor's own steps, without predict's set-up.
        monkeypatch.setattr(Model, "predict", no_more_predict)
        found = await detector.detect(image_bytes("bus.jpg"))
        assert sum(detection.name == "normal" for detection in found) >= MIN_NORMAL["bus.jpg"]
    finally:
        detector.close()


@pytest.fixture(scope="module")
def onnx_detector() -> Iterator[OnnxYoloDetector]:
    detector = OnnxYoloDetector(fall_weights_onnx())
    yield detector
    detector.close()


@pytest.fixture(scope="module")
def opencv_detector() -> Iterator[OpenCvCascadeDetector]:
    detector = OpenCvCascadeDetector()
    yield detector
    detector.close()


@pytest.fixture
def network_attempts(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Fail and record any attempt to resolve a name or open a connection in this process."""
    attempts: list[str] = []

    def refuse(what: str) -> typing.NoReturn:
        attempts.append(what)
        raise OSError(f"network disabled by test: {what}")

    monkeypatch.setattr(socket, "getaddrinfo", lambda host, *_, **__: refuse(f"resolve {host}"))
    monkeypatch.setattr(socket, "create_connection", lambda address, *_, **__: refuse(str(address)))
    monkeypatch.setattr(socket.socket, "connect", lambda _self, address: refuse(str(address)))
    return attempts


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(MIN_NORMAL))
async def test_yolo_on_torch_finds_the_standing_people_as_normal(
    torch_detector: UltralyticsYoloDetector, name: str
) -> None:
    found = await torch_detector.detect(image_bytes(name))

    assert sum(detection.name == "normal" for detection in found) >= MIN_NORMAL[name]
    assert_sane(found, min_confidence=0.25)


@pytest.mark.parametrize("name", sorted(MIN_NORMAL))
async def test_yolo_on_onnx_finds_the_standing_people_as_normal(
    onnx_detector: OnnxYoloDetector, name: str
) -> None:
    found = await onnx_detector.detect(image_bytes(name))

    assert sum(detection.name == "normal" for detection in found) >= MIN_NORMAL[name]
    assert_sane(found, min_confidence=0.25)


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(MIN_NORMAL))
async def test_yolo_on_torch_and_on_onnx_agree_box_for_box(
    torch_detector: UltralyticsYoloDetector, onnx_detector: OnnxYoloDetector, name: str
) -> None:
    on_torch = await torch_detector.detect(image_bytes(name))
    on_onnx = await onnx_detector.detect(image_bytes(name))

    assert_same_findings(on_onnx, on_torch)


@pytest.mark.parametrize("name", sorted(MIN_NORMAL))
async def test_opencv_cascades_find_a_face_or_a_person_and_few_false_ones(
    opencv_detector: OpenCvCascadeDetector, name: str
) -> None:
    found = await opencv_detector.detect(image_bytes(name))

    assert {"face", "person"} & {detection.name for detection in found}
    assert len(found) <= 6
    assert_sane(found, min_confidence=0.5)


@pytest.mark.slow
async def test_yolo_on_torch_reports_what_produced_its_detections(
    torch_detector: UltralyticsYoloDetector,
) -> None:
    info = torch_detector.info

    assert info.detector == "yolo"
    assert info.model == "best.pt"
    assert info.model_sha256 == sha256_of(fall_weights_pt())
    assert info.library_version.startswith("ultralytics 8.")
    assert "; torch 2." in info.library_version
    assert (info.confidence_threshold, info.iou_threshold) == (0.25, 0.7)
    found = await torch_detector.detect(image_bytes("bus.jpg"))
    assert found
    assert all(detection.detector == info for detection in found)


async def test_yolo_on_onnx_reports_what_produced_its_detections(
    onnx_detector: OnnxYoloDetector,
) -> None:
    found = await onnx_detector.detect(image_bytes("bus.jpg"))
    info = onnx_detector.info

    assert info.detector == "yolo-onnx"
    assert info.model == "best_fp16.onnx"
    assert info.model_sha256 == sha256_of(fall_weights_onnx())
    assert info.library_version.startswith("onnxruntime 1.")
    assert (info.confidence_threshold, info.iou_threshold) == (0.25, 0.7)
    assert found
    assert all(detection.detector == info for detection in found)


async def test_opencv_reports_what_produced_its_detections(
    opencv_detector: OpenCvCascadeDetector,
) -> None:
    import cv2

    found = await opencv_detector.detect(image_bytes("zidane.jpg"))
    info = opencv_detector.info

    assert (info.detector, info.model) == ("opencv", "haarcascades")
    assert info.library_version == f"opencv {cv2.__version__}"
    assert found
    assert all(detection.detector == info for detection in found)


@pytest.mark.parametrize("detector_fixture", ["torch_detector", "onnx_detector"])
async def test_yolo_thresholds_for_one_call_filter_and_are_recorded(
    request: pytest.FixtureRequest, detector_fixture: str
) -> None:
    detector: ThreadedDetector[object, object] = request.getfixturevalue(detector_fixture)
    image = image_bytes("bus.jpg")
    default = await detector.detect(image)
    strict = await detector.detect(image, Thresholds(confidence=0.6, iou=0.5))
    loose = await detector.detect(image, Thresholds(confidence=0.05))

    assert {d.detector.confidence_threshold for d in strict} <= {0.6}
    assert {d.detector.iou_threshold for d in strict} <= {0.5}
    assert all(d.confidence >= 0.6 for d in strict)
    assert len(strict) < len(default) < len(loose)
    assert all(d.detector == detector.info for d in default), "the configured ones otherwise"
    assert await detector.detect(image) == default, "an override lasts one call"


async def test_opencv_takes_a_confidence_threshold_but_has_no_iou(
    opencv_detector: OpenCvCascadeDetector,
) -> None:
    image = image_bytes("zidane.jpg")
    every = await opencv_detector.detect(image)
    confident = await opencv_detector.detect(image, Thresholds(confidence=0.9))

    assert len(confident) < len(every)
    assert all(d.confidence >= 0.9 for d in confident)
    assert all(d.detector.confidence_threshold == 0.9 for d in confident)
    with pytest.raises(InvalidInput, match="IoU"):
        await opencv_detector.detect(image, Thresholds(iou=0.5))


@pytest.mark.slow
@pytest.mark.parametrize("backend", ["torch", "onnx"])
async def test_a_big_jpeg_read_at_reduced_scale_gives_the_findings_of_its_full_pixels(
    ultralytics_config_dir: Path, onnx_detector: OnnxYoloDetector, backend: str
) -> None:
    # zidane.jpg is 1280x720: read at half scale, its long side is the model's 640. The
    # same pixels as a PNG are read whole and shrunk by the letterbox instead.
    photo = image_bytes("zidane.jpg")
    with Image.open(io.BytesIO(photo)) as opened:
        full_size = io.BytesIO()
        opened.save(full_size, "PNG")
    detector: ThreadedDetector[typing.Any, typing.Any] = (
        onnx_detector
        if backend == "onnx"
        else UltralyticsYoloDetector(fall_weights_pt(), config_dir=ultralytics_config_dir)
    )
    try:
        reduced = await detector.detect(photo)
        whole = await detector.detect(full_size.getvalue())
    finally:
        if detector is not onnx_detector:
            detector.close()

    assert sum(found.name == "normal" for found in reduced) >= MIN_NORMAL["zidane.jpg"]
    assert_same_findings(reduced, whole)


async def test_exif_orientation_is_applied_before_detecting(
    onnx_detector: OnnxYoloDetector,
) -> None:
    with Image.open(sample_image_paths()["bus.jpg"]) as photo:
        upright = photo.convert("RGB")
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90 degrees clockwise to display"
    stored_sideways, plain = io.BytesIO(), io.BytesIO()
    # PNG is lossless, so after the EXIF turn the detector sees exactly the upright pixels.
    upright.transpose(Image.Transpose.ROTATE_90).save(stored_sideways, "PNG", exif=exif)
    upright.save(plain, "PNG")

    sideways = await onnx_detector.detect(stored_sideways.getvalue())
    straight = await onnx_detector.detect(plain.getvalue())

    assert_same_findings(sideways, straight)


async def test_concurrent_calls_give_the_same_answers_as_one_at_a_time(
    onnx_detector: OnnxYoloDetector,
) -> None:
    names = sorted(MIN_NORMAL)
    one_at_a_time = [await onnx_detector.detect(image_bytes(name)) for name in names]

    together = await asyncio.gather(*(onnx_detector.detect(image_bytes(name)) for name in names))

    for alone, concurrent in zip(one_at_a_time, together, strict=True):
        assert_same_findings(concurrent, alone)


async def test_a_closed_detector_fails_cleanly() -> None:
    detector = OpenCvCascadeDetector()
    detector.close()

    with pytest.raises(DetectionFailed, match="opencv detection failed"):
        await detector.detect(image_bytes("bus.jpg"))


def test_models_load_lazily_or_on_request() -> None:
    detector = OnnxYoloDetector(fall_weights_onnx())
    try:
        assert not detector.loaded
        detector.load()
        assert detector.loaded
    finally:
        detector.close()


def test_missing_yolo_weights_are_refused_without_touching_the_network(
    tmp_path: Path, network_attempts: list[str]
) -> None:
    with pytest.raises(DetectorUnavailable, match="IMAGETAG_YOLO_ALLOW_DOWNLOAD=true") as failure:
        UltralyticsYoloDetector(
            "yolo11n.pt",
            config_dir=tmp_path / "config",
            models_dir=tmp_path / "models",
            allow_download=False,
        )

    assert str(tmp_path / "models" / "yolo11n.pt") in str(failure.value)
    assert network_attempts == []
    assert not (tmp_path / "models").exists()


def test_a_missing_onnx_model_is_refused(tmp_path: Path) -> None:
    with pytest.raises(DetectorUnavailable, match="not found"):
        OnnxYoloDetector(tmp_path / "yolo11n.onnx")


async def test_a_file_that_is_no_model_makes_the_detector_unavailable(tmp_path: Path) -> None:
    broken = tmp_path / "broken.onnx"
    broken.write_bytes(b"not a model")
    detector = OnnxYoloDetector(broken)
    try:
        with pytest.raises(DetectorUnavailable, match=r"could not load the yolo-onnx model"):
            await detector.detect(image_bytes("bus.jpg"))
    finally:
        detector.close()


@pytest.mark.slow
@pytest.mark.filterwarnings("ignore::DeprecationWarning")  # torch's legacy ONNX exporter
@pytest.mark.filterwarnings("ignore:Converting a tensor to a Python boolean")
@pytest.mark.parametrize("nms_in_graph", [False, True], ids=["raw-head", "nms-in-graph"])
async def test_an_ultralytics_onnx_export_runs_on_onnxruntime_like_the_checkpoint(
    tmp_path: Path,
    ultralytics_config_dir: Path,
    torch_detector: UltralyticsYoloDetector,
    nms_in_graph: bool,
) -> None:
    checkpoint = tmp_path / "fall.pt"
    shutil.copyfile(fall_weights_pt(), checkpoint)
    configure_ultralytics_offline(ultralytics_config_dir)
    from ultralytics.models import YOLO

    exported = Path(YOLO(str(checkpoint)).export(format="onnx", imgsz=640, nms=nms_in_graph))
    assert exported.parent == tmp_path

    detector = OnnxYoloDetector(exported)
    try:
        for name in sorted(MIN_NORMAL):
            assert_same_findings(
                await detector.detect(image_bytes(name)),
                await torch_detector.detect(image_bytes(name)),
            )
    finally:
        detector.close()


def half_precision_copy(source: Path, target: Path) -> Path:
    """The model behind float16 input and output, as ``export(half=True)`` makes on a GPU."""
    import onnx
    from onnx import TensorProto, helper

    model = onnx.load(str(source))
    graph = model.graph
    (model_input,) = graph.input
    (model_output,) = graph.output
    for node in graph.node:
        node.input[:] = [f"{name}_f32" if name == model_input.name else name for name in node.input]
        node.output[:] = [
            f"{name}_f32" if name == model_output.name else name for name in node.output
        ]
    graph.node.insert(
        0,
        helper.make_node(
            "Cast", [model_input.name], [f"{model_input.name}_f32"], to=TensorProto.FLOAT
        ),
    )
    graph.node.append(
        helper.make_node(
            "Cast", [f"{model_output.name}_f32"], [model_output.name], to=TensorProto.FLOAT16
        )
    )
    model_input.type.tensor_type.elem_type = TensorProto.FLOAT16
    model_output.type.tensor_type.elem_type = TensorProto.FLOAT16
    onnx.save(model, str(target))
    return target


async def test_a_model_with_float16_input_and_output_gives_the_same_findings(
    tmp_path: Path, onnx_detector: OnnxYoloDetector
) -> None:
    detector = OnnxYoloDetector(half_precision_copy(fall_weights_onnx(), tmp_path / "half.onnx"))
    try:
        for name in sorted(MIN_NORMAL):
            assert_same_findings(
                await detector.detect(image_bytes(name)),
                await onnx_detector.detect(image_bytes(name)),
            )
    finally:
        detector.close()


NETWORK_GUARD = """\
import os
import socket

_LOG = os.environ["NETWORK_ATTEMPTS_LOG"]
_connect = socket.socket.connect
_connect_ex = socket.socket.connect_ex


def _refuse(what):
    with open(_LOG, "a") as log:
        log.write(what + "\\n")
    raise OSError("network disabled by the offline test: " + what)


def _is_network(sock):
    return sock.family in (socket.AF_INET, socket.AF_INET6)


def connect(self, address):
    return _refuse("connect " + repr(address)) if _is_network(self) else _connect(self, address)


def connect_ex(self, address):
    return _refuse("connect " + repr(address)) if _is_network(self) else _connect_ex(self, address)


socket.socket.connect = connect
socket.socket.connect_ex = connect_ex
socket.create_connection = lambda address, *a, **k: _refuse("connect " + repr(address))
socket.getaddrinfo = lambda host, *a, **k: _refuse("resolve " + repr(host))
"""

OFFLINE_RUN = """\
import asyncio, json, socket, sys
from pathlib import Path

from imagetag.adapters.detectors.yolo_onnx import OnnxYoloDetector
from imagetag.adapters.detectors.yolo_torch import UltralyticsYoloDetector

config_dir, weights, onnx_model, photo = (Path(argument) for argument in sys.argv[1:5])


async def main():
    data = photo.read_bytes()
    found = {}
    for detector in (
        UltralyticsYoloDetector(weights, config_dir=config_dir, square_letterbox=True),
        OnnxYoloDetector(onnx_model),
    ):
        detections = await detector.detect(data)
        found[detector.info.detector] = [detection.name for detection in detections]
        detector.close()
    return found


found = asyncio.run(main())
try:  # the canary: proves the guard is live in this interpreter
    socket.getaddrinfo("example.com", 443)
except OSError:
    pass
print(json.dumps(found))
"""


@pytest.mark.slow
def test_yolo_loads_and_detects_with_no_network_and_nothing_written_to_home(
    tmp_path: Path,
) -> None:
    guard_dir, home, work, config_dir = (
        tmp_path / name for name in ("guard", "home", "work", "config")
    )
    for directory in (guard_dir, home, work):
        directory.mkdir()
    (guard_dir / "sitecustomize.py").write_text(NETWORK_GUARD)
    attempts_log = tmp_path / "network-attempts.log"
    environment = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("YOLO_", "XDG_", "ORT_", "PYTEST", "IMAGETAG_"))
        and key not in {"MPLCONFIGDIR", "TORCH_HOME", "PYTHONPATH"}
    }
    environment |= {
        "HOME": str(home),
        "PYTHONPATH": str(guard_dir),
        "NETWORK_ATTEMPTS_LOG": str(attempts_log),
    }

    run = subprocess.run(
        [
            sys.executable,
            "-c",
            OFFLINE_RUN,
            str(config_dir),
            str(fall_weights_pt()),
            str(fall_weights_onnx()),
            str(sample_image_paths()["bus.jpg"]),
        ],
        cwd=work,
        env=environment,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )

    assert run.returncode == 0, run.stderr
    found = json.loads(run.stdout.strip().splitlines()[-1])
    assert found["yolo"].count("normal") >= MIN_NORMAL["bus.jpg"]
    assert found["yolo-onnx"] == found["yolo"]
    assert attempts_log.read_text().splitlines() == ["resolve 'example.com'"]
    assert list(home.rglob("*")) == []
    assert list(work.rglob("*")) == []
    assert (config_dir / "Ultralytics" / "settings.json").is_file()


SPIN_PROBE = """
import os, sys
from pathlib import Path
from imagetag.adapters.detectors.yolo_torch import UltralyticsYoloDetector
UltralyticsYoloDetector(Path(sys.argv[1]), config_dir=Path(sys.argv[2])).load()
print(os.environ.get("GOMP_SPINCOUNT"))
"""


@pytest.mark.slow
@pytest.mark.parametrize(("given", "used"), [(None, "10000"), ("300000", "300000")])
def test_yolo_shortens_openmp_spin_waits_unless_the_environment_sets_them(
    tmp_path: Path, given: str | None, used: str
) -> None:
    environment = {key: value for key, value in os.environ.items() if key != "GOMP_SPINCOUNT"}
    if given is not None:
        environment["GOMP_SPINCOUNT"] = given
    run = subprocess.run(
        [sys.executable, "-c", SPIN_PROBE, str(fall_weights_pt()), str(tmp_path / "config")],
        env=environment,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert run.returncode == 0, run.stderr
    assert run.stdout.strip().splitlines()[-1] == used
