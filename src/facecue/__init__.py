"""facecue: offline, CPU-first facial keypoints, expressions and emotion-aware captions.

The public API is imported on first use, so ``import facecue`` stays light (no OpenCV,
onnxruntime or torch until needed)::

    faces = facecue.analyze("photo.jpg")          # list[Face]
    for frame in facecue.stream("clip.mp4"):      # FrameResult per frame
        ...
    report = facecue.run("clip.mp4", out="out")   # annotated video, JSON Lines, CSV
    table = facecue.to_dataframe(facecue.stream("clip.mp4"))  # pandas: facecue[scale]
"""

from __future__ import annotations

__version__ = "0.1.0"

# name -> module that defines it
_EXPORTS = {
    "analyze": "facecue.api",
    "stream": "facecue.api",
    "run": "facecue.api",
    "RunReport": "facecue.api",
    "Pipeline": "facecue.video.pipeline",
    "Face": "facecue.results",
    "FrameResult": "facecue.results",
    "Expression": "facecue.results",
    "to_dataframe": "facecue.batch.table",
}
__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    if name in _EXPORTS:
        from importlib import import_module

        return getattr(import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'facecue' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
