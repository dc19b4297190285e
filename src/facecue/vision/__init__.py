"""Seeing faces in one image: detectors, the crops the models see, and the ONNX models.

Needs only the runtime dependencies (numpy, OpenCV, onnxruntime)."""
