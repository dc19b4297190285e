"""facecue studio in a real browser: Debian's Chromium, driven by Playwright, with a fake
camera playing a real clip and a fake microphone playing jfk.flac, against a real server on
127.0.0.1. Nothing is mocked: the page's overlay is compared with what the pipeline says for
the same frames, and jfk's words must come back as a caption."""

from __future__ import annotations

import http.client
import io
import json
import re
import shutil
import socket
import statistics
import subprocess
import sys
import threading
import time
import urllib.request
from collections import Counter
from collections.abc import Iterator
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

pytest.importorskip("facecue.studio", reason="needs facecue[studio]: bash scripts/setup.sh")
playwright = pytest.importorskip("playwright.sync_api", reason="needs playwright: setup.sh")

import av  # noqa: E402  (PyAV: the speech extra, which the studio's brings)

from facecue.captions.cues import COLOURS, stylesheet  # noqa: E402
from facecue.studio.app import StudioSettings, caption_css  # noqa: E402
from facecue.studio.files import OUTPUTS  # noqa: E402
from facecue.studio.guard import Guard, new_token  # noqa: E402
from facecue.studio.live import MessageError, label_sets, parse_message  # noqa: E402
from facecue.studio.server import bind, running, url  # noqa: E402

CHROMIUM = "/usr/lib/chromium/chromium"
MAX_UPLOAD_MB = 1.0  # pyfeat_WolfgangLanger_Pexels.mp4 (1.6 MB) is over it, the GRID clips not
JFK_WORDS = {"fellow", "americans", "country"}


def _ffmpeg(*args: str) -> None:
    if shutil.which("ffmpeg") is None:
        pytest.fail("ffmpeg is missing: bash scripts/setup.sh installs it")
    subprocess.run(["ffmpeg", "-v", "error", "-y", *args], check=True)


@pytest.fixture(scope="module")
def media(shared: Path, tmp_path_factory) -> dict[str, Path]:
    """The fake camera's clip (1.5 s of the man smiling, 640x480) and microphone (jfk)."""
    out = tmp_path_factory.mktemp("studio_media")
    clip, speech = out / "smile.y4m", out / "jfk48k.wav"
    _ffmpeg("-ss", "0.75", "-t", "1.5", "-i", str(shared / "media/videos/pyfeat_single_face.mp4"),
            "-vf", "scale=640:360,pad=640:480:0:60,fps=30", "-pix_fmt", "yuv420p", "-an",
            str(clip))
    _ffmpeg("-i", str(shared / "media/speech/jfk/jfk.flac"), "-ar", "48000", "-ac", "1",
            str(speech))
    return {"clip": clip, "speech": speech}


def _browser_args(media: dict[str, Path], fake_ui: bool = True) -> list[str]:
    return ["--no-sandbox", "--autoplay-policy=no-user-gesture-required",
            *(["--use-fake-ui-for-media-stream"] if fake_ui else ["--deny-permission-prompts"]),
            "--use-fake-device-for-media-stream",
            f"--use-file-for-fake-video-capture={media['clip']}",
            f"--use-file-for-fake-audio-capture={media['speech']}"]


@pytest.fixture(scope="module")
def chromium():
    if not Path(CHROMIUM).exists():
        pytest.fail("Chromium is missing: bash scripts/setup.sh installs Debian's chromium")
    with playwright.sync_playwright() as p:
        yield p.chromium


@pytest.fixture(scope="module")
def browser(chromium, media):
    browser = chromium.launch(executable_path=CHROMIUM, headless=True,
                              args=_browser_args(media))
    yield browser
    browser.close()


@pytest.fixture(scope="module")
def server():
    with running(StudioSettings(max_upload_mb=MAX_UPLOAD_MB)) as server:
        yield server
    assert not server.root.exists(), "the studio's temporary folder outlived it"


@pytest.fixture
def studio(server) -> Iterator[str]:
    """The studio's URL; after the test every connection's folder must be gone (a live
    session first recognises the speech still buffered: seconds on a busy machine)."""
    yield server.url
    for _ in range(600):
        if not any(server.root.iterdir()):
            return
        time.sleep(0.05)
    pytest.fail(f"connection folders left behind: {list(server.root.iterdir())}")


def _wait(page, condition: str, timeout: float = 60.0):
    return page.wait_for_function(condition, timeout=timeout * 1000).json_value()


def _pipeline_view(clip: Path) -> tuple[Counter, list, list[float]]:
    """Labels, boxes and the shown label's probabilities ``facecue run`` gives for the fake
    camera's frames."""
    import facecue

    labels, boxes, probs = Counter(), [], []
    for result in facecue.stream(str(clip)):
        labels.update(f.expression.label for f in result.faces)
        boxes += [f.box for f in result.faces]
        probs += [f.expression.score for f in result.faces]
    return labels, boxes, probs


def _iou(a, b) -> float:
    ax, ay, aw, ah = a
    bx, by, bw, bh = b
    w = max(0, min(ax + aw, bx + bw) - max(ax, bx))
    h = max(0, min(ay + ah, by + bh) - max(ay, by))
    return w * h / (aw * ah + bw * bh - w * h)


def test_live_page_overlays_the_pipelines_faces_and_captions_speech(browser, studio, media):
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    page.goto(studio + "/")
    page.click("#start")
    _wait(page, "window.studioStats && studioStats.drawn >= 30")
    caption = _wait(page, "studioStats.captions.find(c => /fellow|country/i.test(c.text))")

    pipeline_labels, pipeline_boxes, pipeline_probs = _pipeline_view(media["clip"])
    shown = [f for frame in page.evaluate("studioStats.faces") for f in frame]
    assert shown, "no face was drawn for the fake camera"
    page_labels = Counter(f["label"] for f in shown)
    assert set(page_labels) <= set(pipeline_labels), (page_labels, pipeline_labels)
    assert page_labels.most_common(1)[0][0] == pipeline_labels.most_common(1)[0][0]
    page_prob = statistics.median(f["prob"] for f in shown)  # JPEG frames: close, not equal
    assert abs(page_prob - statistics.median(pipeline_probs)) < 0.1
    for face in shown:  # each drawn box is where the pipeline finds the face in the clip
        assert max(_iou(face["box"], b) for b in pipeline_boxes) > 0.6, face["box"]
    label = page.text_content("#faces .face-label")
    assert label.startswith("#") and pipeline_labels.most_common(1)[0][0] in label
    x, y, w, h = shown[-1]["box"]  # the overlay really has pixels on the box's left edge
    alpha = page.evaluate(f"""() => {{
        const c = document.getElementById('overlay').getContext('2d');
        const d = c.getImageData({x - 4}, {y + h // 2}, 9, 1).data;
        return Array.from(d).filter((v, i) => i % 4 == 3); }}""")
    assert max(alpha) > 0

    assert JFK_WORDS & set(re.findall(r"[a-z]+", caption["text"].lower()))
    line = page.locator("#captions .cue").last
    classes = line.get_attribute("class").split()
    assert classes[0] == "cue" and classes[1] in COLOURS
    colour = COLOURS[classes[1]].lstrip("#")
    rgb = tuple(int(colour[i:i + 2], 16) for i in (0, 2, 4))
    assert line.evaluate("e => getComputedStyle(e).color") == "rgb({}, {}, {})".format(*rgb)

    jsonl = page.evaluate("fetch(document.getElementById('dl-jsonl').href).then(r => r.text())")
    records = [json.loads(x) for x in jsonl.splitlines()]
    assert records and {"time", "frame", "track_id", "emotion", "keypoints"} <= set(records[0])
    vtt = page.evaluate("fetch(document.getElementById('dl-vtt').href).then(r => r.text())")
    assert vtt.startswith("WEBVTT") and "::cue(.happiness)" in vtt and "-->" in vtt

    page.uncheck("#smooth")  # raw values: the page sends the setting, the server obeys
    page.select_option("#labels", "fer5")
    _wait(page, "studioStats.faces.length && document.querySelector('#faces li') && "
          "document.querySelectorAll('#faces .bar').length === 5")
    assert page.text_content("#faces .face-label").split()[1] in \
        ("anger", "disgust", "sad", "happiness", "surprise")
    page.click("#pause")
    time.sleep(0.3)
    drawn = page.evaluate("studioStats.drawn")
    time.sleep(0.6)
    assert page.evaluate("studioStats.drawn") == drawn, "frames were drawn while paused"
    assert page.evaluate("studioStats.errors") == []
    page.close()


def test_label_sets_without_a_model_cannot_be_chosen(browser, studio):
    page = browser.new_page()
    page.goto(studio + "/")
    _wait(page, "document.querySelectorAll('#labels option').length > 0")
    options = page.eval_on_selector_all(
        "#labels option", "os => os.map(o => [o.value, o.disabled])")
    assert options == [[s["name"], not s["available"]] for s in label_sets()]
    page.close()


def test_file_page_returns_captions_chart_and_downloads(browser, studio, server, shared):
    clip = shared / "media/videos/grid_pwij3p.mpg"
    page = browser.new_page(viewport={"width": 1280, "height": 1000})
    page.goto(studio + "/file")
    _wait(page, "document.getElementById('limit').textContent.length > 0")
    page.set_input_files("#file", str(clip))
    _wait(page, "window.studioChart !== null", timeout=90)
    assert page.is_visible("#result")
    (folder,) = server.root.iterdir()  # this page's connection: the upload and its results
    assert {p.name for p in folder.iterdir()} == {"upload.mpg", *OUTPUTS, "captions.css"}
    chart = page.evaluate("studioChart")
    assert chart["records"] > 50 and chart["faces"][0]["frames"] > 50
    assert "face #" in page.text_content("#chart-summary")
    painted = page.evaluate("""() => {
        const c = document.getElementById('chart');
        const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
        let n = 0; for (let i = 3; i < d.length; i += 4) n += d[i] > 0; return n; }""")
    assert painted > 1000, "the chart is empty"

    cues = _wait(page, """(() => { const t = document.getElementById('player').textTracks[0];
        return t && t.cues && t.cues.length ? Array.from(t.cues).map(c => c.text) : null; })()""")
    words = set(re.findall(r"[a-z]+", " ".join(cues).lower()))
    assert len(words & {"place", "white", "three", "please"}) >= 2, cues
    _wait(page, "document.getElementById('player').readyState >= 1")
    assert abs(page.evaluate("document.getElementById('player').duration") - 3.0) < 0.3

    links = page.eval_on_selector_all("#downloads a", "as => as.map(a => a.href)")
    assert sorted(link.rsplit("/", 1)[1] for link in links) == sorted(
        ["annotated.mp4", "captions.vtt", "captions.srt", "faces.jsonl", "summary.csv"])
    texts = {link.rsplit("/", 1)[1]: page.evaluate(f"fetch('{link}').then(r => r.text())")
             for link in links if not link.endswith(".mp4")}
    assert texts["captions.vtt"].startswith("WEBVTT") and "-->" in texts["captions.srt"]
    assert texts["summary.csv"].startswith("track_id,first_time")
    video = next(link for link in links if link.endswith(".mp4"))
    with urllib.request.urlopen(video, timeout=30) as response:  # plays with its sound
        data = response.read()
    with av.open(io.BytesIO(data)) as mp4:
        assert {s.type: s.codec_context.name for s in mp4.streams} == {"video": "h264",
                                                                        "audio": "aac"}
        assert abs(float(mp4.duration / av.time_base) - 3.0) < 0.3
    page.close()


def test_bad_uploads_get_clear_messages(browser, studio, shared, tmp_path):
    page = browser.new_page()
    page.goto(studio + "/file")
    _wait(page, "document.getElementById('limit').textContent.length > 0")
    message = "document.getElementById('message')"

    page.set_input_files("#file", str(shared / "media/videos/grid_transcripts.csv"))
    assert "is not a video" in page.text_content("#message")

    page.set_input_files("#file", str(shared / "media/videos/pyfeat_WolfgangLanger_Pexels.mp4"))
    assert "larger than this studio's limit of 1 MB" in page.text_content("#message")

    renamed = tmp_path / "holiday.mp4"  # a real photo under a video's name
    renamed.write_bytes((shared / "media/photos/pyfeat_single_face.jpg").read_bytes())
    page.set_input_files("#file", str(renamed))
    text = _wait(page, f"{message}.textContent.includes('holiday.mp4') && "
                 f"{message}.textContent.includes('not accepted') && {message}.textContent")
    assert "not a video" in text or "no video frames" in text

    port = int(studio.rsplit(":", 1)[1])  # uploads from elsewhere, or for no open page
    status, body = _post(port, "/upload/nope", b"x", origin=studio)
    assert status == 404 and "reload the page" in body["error"]
    status, body = _post(port, "/upload/nope", b"x", origin="http://evil.example")
    assert status == 403 and "own page" in body["error"]
    page.close()


def _post(port: int, path: str, body: bytes, origin: str | None) -> tuple[int, dict]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    headers = {"Content-Type": "video/mp4", "X-Filename": "clip.mp4"}
    if origin:
        headers["Origin"] = origin
    conn.request("POST", path, body=body, headers=headers)
    response = conn.getresponse()
    out = response.status, json.loads(response.read() or b"{}")
    conn.close()
    return out


def test_upload_over_the_limit_is_refused_by_the_server(studio, shared):
    """The page checks the size first; the server checks again, for any other client."""
    import websockets.sync.client as ws_client

    with ws_client.connect(studio.replace("http", "ws") + "/ws/files",
                           origin=studio) as ws:
        hello = json.loads(ws.recv(timeout=10))
        port = int(studio.rsplit(":", 1)[1])
        big = (shared / "media/videos/pyfeat_WolfgangLanger_Pexels.mp4").read_bytes()
        status, body = _post(port, f"/upload/{hello['connection']}", big, origin=studio)
        assert status == 413 and "limit of 1 MB" in body["error"]
        status, body = _post(port, f"/upload/{hello['connection']}", b"not a video at all",
                             origin=studio)
        assert status == 415 and "clip.mp4" in body["error"]


def test_cross_origin_websocket_is_refused(browser, studio, tmp_path):
    import websockets.sync.client as ws_client
    from websockets.exceptions import InvalidStatus

    ws_url = studio.replace("http", "ws") + "/ws/live"
    with pytest.raises(InvalidStatus) as refused:
        ws_client.connect(ws_url, origin="http://evil.example", open_timeout=10)
    assert refused.value.response.status_code == 403
    with ws_client.connect(ws_url, origin=studio, open_timeout=30) as ws:  # its own origin
        assert json.loads(ws.recv(timeout=30))["type"] == "hello"

    # A page from another origin (another port of 127.0.0.1) opening the studio's socket
    (tmp_path / "other.html").write_text(
        "<script>const ws = new WebSocket('" + ws_url + "');"
        "window.result = null; ws.onopen = () => window.result = 'open';"
        "ws.onclose = (e) => window.result = 'closed ' + e.code;</script>")
    server = ThreadingHTTPServer(("127.0.0.1", 0),
                                 partial(SimpleHTTPRequestHandler, directory=str(tmp_path)))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        page = browser.new_page()
        page.goto(f"http://127.0.0.1:{server.server_address[1]}/other.html")
        assert _wait(page, "window.result", timeout=15) == "closed 1006"
        page.close()
    finally:
        server.shutdown()


def test_token_guards_a_studio_beyond_loopback(studio):
    assert new_token("127.0.0.1") is None and new_token("localhost") is None
    assert new_token("0.0.0.0") and new_token("192.168.1.20")
    guard = Guard("192.168.1.20", "s3cret")
    assert guard.host_ok({"host": "192.168.1.20:8000"})
    assert not guard.host_ok({"host": "evil.example:8000"})  # DNS rebinding
    assert guard.token_given(b"token=s3cret", {}) == (True, True)
    assert guard.token_given(b"", {"cookie": "facecue_studio_token=s3cret"}) == (True, False)
    assert guard.token_given(b"token=wrong", {})[0] is False
    sock = bind("127.0.0.1", 0)  # the URL printed for every address, as Jupyter prints it
    try:
        assert url(StudioSettings(host="0.0.0.0", token="s3cret"), sock) == \
            f"http://{socket.gethostname()}:{sock.getsockname()[1]}/?token=s3cret"
    finally:
        sock.close()
    with running(StudioSettings(token="s3cret")) as guarded:
        port = int(guarded.url.rsplit(":", 1)[1])
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        conn.request("GET", "/")
        response = conn.getresponse()
        assert response.status == 403 and b"token" in response.read()
        conn.request("GET", "/?token=s3cret")
        response = conn.getresponse()
        response.read()
        assert response.status == 200
        cookie = response.getheader("set-cookie").split(";")[0]
        conn.request("GET", "/static/live.js", headers={"Cookie": cookie})
        response = conn.getresponse()
        assert response.status == 200 and b"WebSocket" in response.read()
        conn.request("GET", "/", headers={"Host": "evil.example"})
        response = conn.getresponse()
        assert response.status == 403 and b"host" in response.read()
        conn.close()


def test_refused_camera_permission_is_explained(chromium, media, studio):
    browser = chromium.launch(executable_path=CHROMIUM, headless=True,
                              args=_browser_args(media, fake_ui=False))
    try:
        page = browser.new_page()
        page.goto(studio + "/")
        page.click("#start")
        text = _wait(page, "document.getElementById('message').textContent", timeout=15)
        assert "permission was refused" in text
        assert page.is_enabled("#start")  # the user can try again
    finally:
        browser.close()


def test_dropped_connection_is_explained_and_the_server_survives(browser):
    with running(StudioSettings()) as alone:
        page = browser.new_page()
        page.goto(alone.url + "/")
        page.click("#start")
        _wait(page, "studioStats.drawn >= 3")
    text = _wait(page, "document.getElementById('message').textContent", timeout=15)
    assert "connection to the facecue studio was lost" in text
    page.close()


def test_bad_messages_do_not_end_a_session(studio, media):
    """A malformed message gets an error back; the same connection then still works."""
    import cv2
    import websockets.sync.client as ws_client

    from facecue.studio.live import FRAME_HEADER, JPEG

    image = next(iter(_frames(media["clip"])))
    jpeg = cv2.imencode(".jpg", image)[1].tobytes()
    frame = FRAME_HEADER.pack(JPEG, image.shape[1], image.shape[0], 7, 0.5) + jpeg
    with ws_client.connect(studio.replace("http", "ws") + "/ws/live", origin=studio,
                           open_timeout=30) as ws:
        assert json.loads(ws.recv(timeout=30))["type"] == "hello"
        ws.send(b"\x09\x09")
        ws.send("{not json")
        ws.send(frame)
        replies = [json.loads(ws.recv(timeout=30)) for _ in range(3)]
    errors = [r["message"] for r in replies if r["type"] == "error"]
    assert any("bad message" in e for e in errors) and any("bad control" in e for e in errors)
    faces = next(r for r in replies if r["type"] == "faces")
    assert faces["seq"] == 7 and len(faces["faces"]) == 1
    assert len(faces["faces"][0]["keypoints"]) == 15


def _frames(clip: Path):
    import cv2

    cap = cv2.VideoCapture(str(clip))
    try:
        while True:
            ok, image = cap.read()
            if not ok:
                return
            yield image
    finally:
        cap.release()


def test_malformed_messages_are_refused():
    for data, why in [(b"", "empty"), (b"\x09abc", "unknown"), (b"\x03\0\0\0" + b"\0" * 9,
                      "wrong length"), (b"\x01\0" + (4000).to_bytes(2, "little") + b"\0" * 30,
                      "frame of")]:
        with pytest.raises(MessageError, match=why):
            parse_message(data)
    header = b"\x01\0" + (2).to_bytes(2, "little") * 2 + b"\0\0" + b"\0" * 12
    with pytest.raises(MessageError, match="not a JPEG"):
        parse_message(header + b"garbage")


def test_live_captions_use_the_webvtt_classes():
    css = caption_css()
    for name in re.findall(r"::cue\(\.([\w-]+)\)", stylesheet()):
        rule = re.search(r"::cue\(\." + name + r"\) (\{[^}]*\})", css).group(1)
        assert f".cue.{name} {rule}" in css


def test_runtime_never_imports_the_studio():
    """With the studio's dependencies unimportable, facecue and every other subpackage
    import, the command tree builds, and ``facecue studio`` says what to install."""
    code = (
        "import importlib, pkgutil, sys\n"
        "for name in ('starlette', 'uvicorn', 'websockets'):\n"
        "    sys.modules[name] = None\n"
        "import facecue\n"
        "for m in pkgutil.walk_packages(facecue.__path__, 'facecue.'):  # train: torch, slow\n"
        "    if not m.name.startswith(('facecue.studio', 'facecue.train')) \\\n"
        "            and not m.name.endswith('__main__'):\n"
        "        importlib.import_module(m.name)\n"
        "assert not any(n.startswith('facecue.studio') for n in sys.modules)\n"
        "from facecue.cli import main\n"
        "sys.exit(main(['studio']))\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 2, done.stderr
    assert "facecue studio needs starlette: pip install 'facecue[studio]'" in done.stderr
