"""The package's layers: which subpackage may import which, read from the source itself, and
the runtime subpackages importable without the extras they must not need."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import facecue

PACKAGE = Path(facecue.__file__).parent
CORE = "core"  # the top-level modules: results, labels, fileio, cpu, provenance
# What each layer may import besides itself; anything else is an upward (or sideways) arrow.
ALLOWED = {
    CORE: set(),
    "vision": {CORE},
    "video": {CORE, "vision"},
    "api": {CORE, "vision", "video"},
    "formats": {CORE, "vision", "video"},
    "evaluation": {CORE, "vision", "formats"},
    "speech": {CORE},
    "captions": {CORE, "vision", "video", "api", "speech"},
    "train": {CORE, "vision", "formats", "evaluation"},
    "cli": {CORE, "vision", "video", "api", "formats", "evaluation", "speech", "captions",
            "train", "studio", "batch"},
    "studio": {CORE, "vision", "video", "api", "speech", "captions"},
    "batch": {CORE, "vision", "video", "api", "speech", "captions"},
}
RUNTIME = ["facecue.vision", "facecue.video", "facecue.formats", "facecue.evaluation",
           "facecue.api"]


def layer(module: str) -> str:
    """``facecue.video.pipeline`` -> ``video``; ``facecue.results`` -> core."""
    parts = module.split(".")
    if len(parts) > 1 and (PACKAGE / parts[1]).is_dir():
        return parts[1]
    return "api" if parts[1:2] == ["api"] else CORE


def modules() -> dict[str, Path]:
    out = {}
    for path in PACKAGE.rglob("*.py"):
        rel = path.relative_to(PACKAGE.parent).with_suffix("")
        name = ".".join(rel.parts[:-1] if rel.name == "__init__" else rel.parts)
        out[name] = path
    return out


def facecue_imports(path: Path, module: str) -> set[str]:
    """Every facecue module ``path`` imports, at any depth (lazy imports count too)."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names if a.name.startswith("facecue")}
        elif isinstance(node, ast.ImportFrom) and node.module:
            if node.level:
                raise AssertionError(f"{module}: relative import; facecue uses absolute ones")
            if node.module.startswith("facecue"):
                found |= {f"{node.module}.{a.name}" if node.module == "facecue" else node.module
                          for a in node.names}
    return found


def test_every_layer_is_known():
    dirs = {p.name for p in PACKAGE.iterdir() if (p / "__init__.py").exists()}
    assert dirs <= set(ALLOWED), f"subpackages without a declared layer: {dirs - set(ALLOWED)}"


def test_no_upward_imports():
    arrows = []
    for module, path in modules().items():
        if module == "facecue":  # the lazy facade re-exports from the layers
            continue
        own = layer(module)
        for target in facecue_imports(path, module):
            other = layer(target)
            if other != own and other not in ALLOWED[own]:
                arrows.append(f"{module} ({own}) -> {target} ({other})")
    assert not arrows, "imports against the layers:\n" + "\n".join(sorted(arrows))


def test_runtime_imports_without_extras():
    """With torch, onnx, faster-whisper, PyAV, matplotlib and the speech packages made
    unimportable, every runtime module still imports (the extras are only for their layers)."""
    blocked = ["torch", "onnx", "faster_whisper", "ctranslate2", "av", "vaderSentiment",
               "matplotlib", "sounddevice", "tqdm"]
    runtime = sorted(m for m in modules() if layer(m) in {CORE, *(r.split(".")[-1]
                                                               for r in RUNTIME)})
    code = (
        "import importlib, sys\n"
        f"for name in {blocked!r}:\n"
        "    sys.modules[name] = None\n"
        f"for m in {runtime!r}:\n"
        "    importlib.import_module(m)\n"
        "import facecue\n"
        "facecue.Face, facecue.FrameResult, facecue.analyze, facecue.stream, facecue.run\n"
        "print(len(sys.modules))\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert len(runtime) > 20


def test_import_facecue_is_light():
    """``import facecue`` alone loads neither OpenCV nor onnxruntime."""
    code = "import sys, facecue; print(sorted({'cv2', 'onnxruntime'} & set(sys.modules)))"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          check=True)
    assert done.stdout.strip() == "[]"
