"""The shipped graphs before and after facecue.train.fastgraph, side by side on this machine.

    python benchmarks/bench_fastgraph.py [--before-rev b94062e~1]
    python benchmarks/bench_fastgraph.py --onnxruntime 1.24.4 1.25.1 1.28.0   # also these

For each shipped model: the previous file (from git, the commit before the rewrite) and the
shipped one, on real held-out crops (youtube-faces-68 ``test`` faces, FER2013 PrivateTest):
the largest output difference, node counts, single-face latency (one thread, median of 1000
warm calls, the two files alternated three times), and from onnxruntime's profiler the share of
the previous file's time spent in its first convs. ``--onnxruntime`` installs each named
release into a throwaway venv and runs both files there against this venv's outputs of the
previous file (a release that cannot load a file says so).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort

from facecue.formats.fer2013 import read_fer2013
from facecue.formats.landmarks68 import convert_landmarks68, in_split, read_landmarks68
from facecue.vision.runtime import EXACT_INT8, onnx_session, shipped_model_path

REPO = Path(__file__).resolve().parents[1]
NAMES = ("keypoints15", "expression_fer7", "expression_fer5")
CHILD = """
import sys, numpy as np, onnxruntime as ort
x = np.load(sys.argv[1])
for i, path in enumerate(sys.argv[2:]):
    try:
        o = ort.SessionOptions()
        for key, value in EXACT_INT8.items():
            o.add_session_config_entry(key, value)
        s = ort.InferenceSession(path, o, providers=["CPUExecutionProvider"])
        np.save(f"{sys.argv[1]}.{i}.npy", s.run(None, {"pixels": x})[0])
    except Exception as e:
        print(f"{i} {str(e).splitlines()[0][-90:]}")
print(ort.__version__)
""".replace("EXACT_INT8", repr(EXACT_INT8))  # the child runs without facecue


def session(path: Path, profile: bool = False) -> ort.InferenceSession:
    opts = ort.SessionOptions()
    opts.enable_profiling = profile
    return onnx_session(path, threads=1, options=opts)


def median_ms(sess: ort.InferenceSession, faces: np.ndarray, calls: int = 1000) -> float:
    for face in faces[:50]:
        sess.run(None, {"pixels": face[None, None]})
    times = []
    for i in range(calls):
        t = time.perf_counter()
        sess.run(None, {"pixels": faces[i % len(faces)][None, None]})
        times.append(time.perf_counter() - t)
    return 1000 * float(np.median(times))


def first_conv_share(path: Path, faces: np.ndarray) -> float:
    """Share of in-kernel time spent in the convs that read the gray channel."""
    sess = session(path, profile=True)
    for i in range(300):
        sess.run(None, {"pixels": faces[i % len(faces)][None, None]})
    trace = Path(sess.end_profiling())
    events = json.loads(trace.read_text())
    trace.unlink()
    kernels = [e for e in events if e.get("cat") == "Node" and e["name"].endswith("_kernel_time")]
    first = sum(e["dur"] for e in kernels if "features.0/Conv" in e["name"])
    return first / sum(e["dur"] for e in kernels)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--before-rev", default="b94062e~1", help="git revision of the old files")
    ap.add_argument("--shared", default=str(REPO.parent / "shared"))
    ap.add_argument("--onnxruntime", nargs="*", default=[], help="releases to check too")
    args = ap.parse_args()
    data = Path(args.shared) / "data"
    items = in_split(read_landmarks68(data / "youtube-faces-68"), "test")
    private = read_fer2013(data / "fer2013" / "fer2013.csv.gz")[0].split("PrivateTest").images
    crops = {"keypoints15": convert_landmarks68(items).images.astype(np.float32),
             "expression_fer7": private.astype(np.float32),
             "expression_fer5": private.astype(np.float32)}
    tmp = Path(tempfile.mkdtemp())
    print(f"onnxruntime {ort.__version__}; previous files from {args.before_rev}")
    for name in NAMES:
        new = shipped_model_path(name)
        old = tmp / f"{name}_before.onnx"
        old.write_bytes(subprocess.run(
            ["git", "show", f"{args.before_rev}:src/facecue/weights/{name}.onnx"],
            cwd=REPO, check=True, capture_output=True).stdout)
        x = crops[name][:, None]
        outs = [session(p).run(None, {"pixels": x})[0] for p in (old, new)]
        nodes = [len(onnx.load(str(p)).graph.node) for p in (old, new)]
        times = {"before": [], "after": []}
        for _ in range(3):
            times["before"].append(median_ms(session(old), crops[name]))
            times["after"].append(median_ms(session(new), crops[name]))
        print(f"{name}: {len(x)} real crops, largest output change "
              f"{float(np.abs(outs[1] - outs[0]).max()):g}; nodes {nodes[0]} -> {nodes[1]}; "
              f"first convs {100 * first_conv_share(old, crops[name]):.0f} % of the previous "
              f"graph's kernel time")
        print("  ms/face, 1 thread: before " + ", ".join(f"{t:.3f}" for t in times["before"])
              + "; after " + ", ".join(f"{t:.3f}" for t in times["after"]))
        np.save(tmp / f"{name}.npy", x[:64])
        np.save(tmp / f"{name}.ref.npy", outs[0][:64])
    for version in args.onnxruntime:
        venv = tmp / f"ort-{version}"
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
        subprocess.run([str(venv / "bin/pip"), "install", "-q", f"onnxruntime=={version}",
                        "numpy"], check=True, capture_output=True)
        for name in NAMES:
            inputs = tmp / f"{name}.npy"
            run = subprocess.run([str(venv / "bin/python"), "-c", CHILD, str(inputs),
                                  str(tmp / f"{name}_before.onnx"), str(shipped_model_path(name))],
                                 capture_output=True, text=True, check=True)
            ref = np.load(tmp / f"{name}.ref.npy")
            errors = dict(line.split(" ", 1) for line in run.stdout.splitlines()[:-1])
            found = []
            for i, which in enumerate(("previous file", "shipped file")):
                out = Path(f"{inputs}.{i}.npy")
                found.append(f"{which} {float(np.abs(np.load(out) - ref).max()):g}"
                             if out.exists() else f"{which} does not run ({errors[str(i)]})")
                out.unlink(missing_ok=True)
            print(f"onnxruntime {version}, {name}: largest difference from the previous file "
                  f"on {ort.__version__}: " + "; ".join(found))


if __name__ == "__main__":
    main()
