"""Keep ultralytics offline and out of the home directory.

Ultralytics reads its switches from the environment once, when ``ultralytics`` is first
imported: ``YOLO_OFFLINE`` makes ``is_online()`` answer False without a DNS probe (which
in turn disables its telemetry events and Sentry reports), ``YOLO_AUTOINSTALL`` stops it
from pip-installing missing requirements, and ``YOLO_CONFIG_DIR`` moves its
``settings.json`` away from ``~/.config/Ultralytics``. So this must run before that import.

Fonts: ultralytics downloads Arial into its config directory only from ``check_font``,
which only plotting (``Annotator``) and dataset checks call. The detectors never plot or
train, and the offline test in ``tests/integration/test_detectors.py`` proves a whole
load-and-predict makes no network attempt and writes nothing under ``$HOME``.

Ultralytics also replaces ``PIL.Image.open`` on import; we put the original back (see
``_restore_pillow_open``).
"""

from __future__ import annotations

import logging
import os
import sys
from pathlib import Path

logger = logging.getLogger(__name__)


def configure_ultralytics_offline(config_dir: Path) -> None:
    """Point ultralytics at ``config_dir``, offline, quiet and without telemetry.

    Call before anything imports ``ultralytics``; calling again is harmless. If ultralytics
    was already imported in online mode this raises ``RuntimeError`` rather than run with
    a library that may reach the network.
    """
    config_dir = config_dir.expanduser().resolve()
    config_dir.mkdir(parents=True, exist_ok=True)
    if "ultralytics" not in sys.modules:
        os.environ["YOLO_OFFLINE"] = "1"
        os.environ["YOLO_AUTOINSTALL"] = "0"
        os.environ["YOLO_VERBOSE"] = "False"
        os.environ["YOLO_CONFIG_DIR"] = str(config_dir)
        # Only read if something plots; keeps matplotlib's font cache out of ~/.cache.
        os.environ.setdefault("MPLCONFIGDIR", str(config_dir / "matplotlib"))
        # ONNX export loads onnxruntime, whose telemetry writes under ~/.cache on import.
        os.environ.setdefault("ORT_DISABLE_TELEMETRY", "1")

    import ultralytics
    from ultralytics.utils import ONLINE, USER_CONFIG_DIR

    _restore_pillow_open()
    if ONLINE:
        raise RuntimeError(
            "ultralytics was imported before configure_ultralytics_offline() and is in online "
            "mode; configure it before the first import (or set YOLO_OFFLINE=1)"
        )
    if not USER_CONFIG_DIR.resolve().is_relative_to(config_dir):
        # The first caller's directory holds the settings for the rest of the process.
        logger.debug("ultralytics keeps its settings in %s, not %s", USER_CONFIG_DIR, config_dir)
    ultralytics.settings.update(
        {
            "sync": False,
            "datasets_dir": str(config_dir / "datasets"),
            "weights_dir": str(config_dir / "weights"),
            "runs_dir": str(config_dir / "runs"),
            "clearml": False,
            "comet": False,
            "dvc": False,
            "mlflow": False,
            "raytune": False,
            "tensorboard": False,
            "wandb": False,
            "vscode_msg": False,
            "openvino_msg": False,
        }
    )


def _restore_pillow_open() -> None:
    """Undo ultralytics' replacement of ``PIL.Image.open``, process-wide.

    Its wrapper answers the first image Pillow cannot identify by trying to pip-install and
    import pi-heif; offline, every "not an image" in the process (the upload checks' too)
    would then surface as ModuleNotFoundError. We decode images ourselves and need no HEIF.
    """
    from PIL import Image
    from ultralytics.utils import patches

    original = getattr(patches, "_image_open", None)
    if original is not None and Image.open is getattr(patches, "image_open", None):
        Image.open = original
