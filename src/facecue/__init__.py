"""facecue: offline, CPU-first facial keypoints, expressions and emotion-aware captions.

``facecue.analyze(image)`` and ``facecue.stream(source)`` are imported on first use, so
``import facecue`` stays light (no OpenCV, onnxruntime or torch until needed).
"""

from __future__ import annotations

__version__ = "0.1.0"
__all__ = ["analyze", "stream"]


def __getattr__(name: str):
    if name in __all__:
        from facecue import api

        return getattr(api, name)
    raise AttributeError(f"module 'facecue' has no attribute {name!r}")
