"""Object detectors behind the ``Detector`` port: YOLO on PyTorch or ONNX Runtime, and OpenCV."""
