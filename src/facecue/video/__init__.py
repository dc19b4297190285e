"""Faces over time: frame sources, tracking, smoothing, the pipeline, drawing and sinks.

Needs only the runtime dependencies (numpy, OpenCV, onnxruntime)."""
