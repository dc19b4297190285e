// The live page: camera frames and microphone audio to the studio over one WebSocket, the
// faces it finds drawn over the video, the captions it hears shown under it.
//
// Frames go as JPEG (?frames=raw sends RGBA pixels instead: docs/studio.md compares them),
// at most IN_FLIGHT at a time, each new camera frame once. Every message carries its capture
// time on this page's clock, so the server puts frames and speech on one timeline.
// window.studioStats keeps what was drawn and heard, for the tests and the benchmark.

const $ = (id) => document.getElementById(id);
const video = $("video"), overlay = $("overlay"), draw = overlay.getContext("2d");
const RAW = new URLSearchParams(location.search).get("frames") === "raw";
const IN_FLIGHT = 2;
const JPEG_QUALITY = 0.8;
const AUDIO_CHUNK = 800;  // samples at 16 kHz: 50 ms
const FRAME_HEADER = 20, AUDIO_HEADER = 12;  // as facecue.studio.live's structs
// facecue.video.annotate's palette (there BGR), one colour per face ID and per emotion bar
const PALETTE = ["#f58742", "#78c850", "#e74c3c", "#ffc800", "#c85ac8", "#3ca0ff",
                 "#ff8c8c", "#dcdc28"];

const stats = window.studioStats = {
  drawn: 0, latencies: [], serverMs: [], drawTimes: [], faces: [], captions: [], errors: [],
};
const t0 = performance.now();
const clock = () => (performance.now() - t0) / 1000;

let ws = null, session = null, media = null, audio = null, capture = null, grab = null;
let seq = 0, acked = 0, fresh = false, busy = false, paused = false;
let retry = 0, audioTime = null;
const sentAt = new Map();

function message(text, kind = "error") {
  const box = $("message");
  box.textContent = text || "";
  box.className = kind;
  box.hidden = !text;
  if (text && kind === "error") stats.errors.push(text);
}

function connect() {
  const scheme = location.protocol === "https:" ? "wss" : "ws";
  ws = new WebSocket(`${scheme}://${location.host}/ws/live`);
  ws.binaryType = "arraybuffer";
  ws.onopen = () => { retry = 0; };
  ws.onmessage = (event) => handle(JSON.parse(event.data));
  ws.onclose = (event) => {
    session = null;
    busy = false;
    seq = acked = 0;
    sentAt.clear();
    if (event.code === 1008) {
      message(`The studio refused this page's connection: ${event.reason || "not allowed"}.`);
      return;
    }
    retry = Math.min(retry + 1, 5);
    message(`The connection to the facecue studio was lost (is it still running?). ` +
            `Trying again in ${retry} s…`);
    setTimeout(connect, retry * 1000);
  };
}

function handle(msg) {
  if (msg.type === "faces") return showFaces(msg);
  if (msg.type === "caption") return showCaption(msg);
  if (msg.type === "hello") {
    session = msg.session;
    message("");
    $("dl-jsonl").href = `/live/${session}/faces.jsonl`;
    $("dl-vtt").href = `/live/${session}/captions.vtt`;
    const select = $("labels");
    select.replaceChildren(...msg.labels.map(({ name, available }) => {
      const option = new Option(available ? name : `${name} (no model yet)`, name);
      option.disabled = !available;
      return option;
    }));
    select.value = msg.current;
    if (!$("smooth").checked) send({ type: "smooth", on: false });
    if (!msg.speech) message("Speech recognition is not available: no captions.", "note");
    return;
  }
  if (msg.type === "labels") { $("labels").value = msg.current; return; }
  if (msg.type === "error") message(msg.message);
}

function send(control) {
  if (ws && ws.readyState === WebSocket.OPEN) ws.send(JSON.stringify(control));
}

async function start() {
  $("start").disabled = true;
  if (!navigator.mediaDevices || !window.isSecureContext) {
    message("The browser gives the camera only to secure pages: open the studio as " +
            "http://127.0.0.1 or http://localhost on this machine, or over HTTPS.");
    $("start").disabled = false;
    return;
  }
  const want = { width: { ideal: 640 }, height: { ideal: 480 } };
  try {
    media = await navigator.mediaDevices.getUserMedia({ video: want, audio: {
      channelCount: 1, echoCancellation: false, noiseSuppression: false, autoGainControl: false,
    } });
  } catch (error) {
    try {  // the camera alone: no captions, but the faces still work
      media = await navigator.mediaDevices.getUserMedia({ video: want });
      message(`No microphone (${explain(error)}): faces only, no captions.`, "note");
    } catch (videoError) {
      message(`The camera could not be opened: ${explain(videoError)}`);
      $("start").disabled = false;
      return;
    }
  }
  video.srcObject = media;
  await video.play();
  $("idle").hidden = true;
  capture = document.createElement("canvas");
  grab = capture.getContext("2d", { willReadFrequently: RAW });
  if (media.getAudioTracks().length) await startAudio(media);
  for (const track of media.getTracks()) {
    track.onended = () => message("The camera or microphone stopped (unplugged, or access " +
                                  "withdrawn). Reload the page to start again.");
  }
  $("pause").disabled = false;
  video.requestVideoFrameCallback(onVideoFrame);
}

function explain(error) {
  if (error.name === "NotAllowedError" || error.name === "SecurityError") {
    return "permission was refused. Allow the camera and microphone for this page " +
           "(the camera icon in the address bar), then press Start again.";
  }
  if (error.name === "NotFoundError" || error.name === "OverconstrainedError") {
    return "no camera or microphone was found.";
  }
  if (error.name === "NotReadableError") return "another program is using it.";
  return `${error.name}: ${error.message}`;
}

async function startAudio(stream) {
  try {
    audio = new AudioContext({ sampleRate: 16000 });
  } catch {
    audio = new AudioContext();  // the worklet resamples
  }
  await audio.audioWorklet.addModule("/static/pcm-worklet.js");
  const node = new AudioWorkletNode(audio, "pcm16k",
                                    { processorOptions: { chunk: AUDIO_CHUNK } });
  node.port.onmessage = (event) => sendAudio(event.data);
  audio.createMediaStreamSource(stream).connect(node);
  node.connect(audio.destination);  // it outputs silence; connected, it keeps running
  await audio.resume();
}

function sendAudio(samples) {
  const end = clock();
  if (paused || !session || ws.readyState !== WebSocket.OPEN) {
    audioTime = null;  // the server fills the gap with silence
    return;
  }
  if (audioTime === null) audioTime = end - samples.length / 16000;
  const buffer = new ArrayBuffer(AUDIO_HEADER + samples.length * 4);
  const view = new DataView(buffer);
  view.setUint8(0, 3);
  view.setFloat64(4, audioTime, true);
  new Float32Array(buffer, AUDIO_HEADER).set(samples);
  ws.send(buffer);
  audioTime += samples.length / 16000;
}

function onVideoFrame() {
  fresh = true;
  pump();
  video.requestVideoFrameCallback(onVideoFrame);
}

function pump() {
  if (!fresh || busy || paused || !session || ws.readyState !== WebSocket.OPEN) return;
  if (seq - acked >= IN_FLIGHT) return;
  fresh = false;
  busy = true;
  sendFrame().finally(() => { busy = false; });
}

async function sendFrame() {
  const w = video.videoWidth, h = video.videoHeight;
  if (!w || !h) return;
  if (capture.width !== w || capture.height !== h) {
    capture.width = w;
    capture.height = h;
  }
  const taken = clock();
  grab.drawImage(video, 0, 0, w, h);
  let payload, kind;
  if (RAW) {
    payload = grab.getImageData(0, 0, w, h).data;
    kind = 2;
  } else {
    const blob = await new Promise((done) => capture.toBlob(done, "image/jpeg", JPEG_QUALITY));
    payload = new Uint8Array(await blob.arrayBuffer());
    kind = 1;
  }
  const buffer = new ArrayBuffer(FRAME_HEADER + payload.length);
  const view = new DataView(buffer);
  view.setUint8(0, kind);
  view.setUint16(2, w, true);
  view.setUint16(4, h, true);
  view.setUint32(8, ++seq, true);
  view.setFloat64(12, taken, true);
  new Uint8Array(buffer, FRAME_HEADER).set(payload);
  if (ws.readyState !== WebSocket.OPEN) return;
  sentAt.set(seq, performance.now());
  ws.send(buffer);
}

function showFaces(msg) {
  acked = Math.max(acked, msg.seq);
  if (paused) return;
  drawOverlay(msg);
  const sent = sentAt.get(msg.seq);
  const drawnAt = performance.now();
  for (const key of sentAt.keys()) if (key <= msg.seq) sentAt.delete(key);
  if (sent !== undefined) stats.latencies.push(drawnAt - sent);
  stats.drawn += 1;
  stats.drawTimes.push(drawnAt);
  stats.serverMs.push(msg.server_ms);
  stats.faces.push(msg.faces.map((f) => ({ id: f.id, label: f.label, prob: f.prob,
                                           box: f.box })));
  listFaces(msg);
  showStats();
  pump();
}

function drawOverlay(msg) {
  if (overlay.width !== msg.width || overlay.height !== msg.height) {
    overlay.width = msg.width;
    overlay.height = msg.height;
  }
  draw.clearRect(0, 0, overlay.width, overlay.height);
  const thick = Math.max(1, Math.round(Math.max(msg.width, msg.height) / 480));
  draw.font = `${12 * thick + 2}px system-ui, sans-serif`;
  draw.textBaseline = "bottom";
  for (const face of msg.faces) {
    const [x, y, w, h] = face.box;
    const colour = PALETTE[(face.id || 0) % PALETTE.length];
    draw.lineWidth = 2 * thick;
    draw.strokeStyle = colour;
    draw.strokeRect(x, y, w, h);
    if ($("keypoints").checked) {
      draw.fillStyle = "#ffff00";
      for (const [px, py] of face.keypoints) {
        draw.beginPath();
        draw.arc(px, py, 2 * thick, 0, 2 * Math.PI);
        draw.fill();
      }
    }
    const text = `${face.id !== null ? `#${face.id} ` : ""}${face.label} ` +
                 `${Math.round(face.prob * 100)}%`;
    const ty = y > 24 * thick ? y - 4 * thick : y + h + 22 * thick;
    draw.lineWidth = 3 * thick;
    draw.strokeStyle = "#000";
    draw.strokeText(text, x, ty);
    draw.fillStyle = colour;
    draw.fillText(text, x, ty);
    let left = x;  // the probability bar: one segment per emotion, widest = most likely
    const barY = Math.min(msg.height - 5 * thick, y + h + 4 * thick);
    face.probs.forEach((p, i) => {
      draw.fillStyle = PALETTE[i % PALETTE.length];
      draw.fillRect(left, barY, p * w, 4 * thick);
      left += p * w;
    });
  }
}

function listFaces(msg) {
  $("faces").replaceChildren(...msg.faces.map((face) => {
    const item = document.createElement("li");
    const title = document.createElement("b");
    title.className = "face-label";
    title.textContent = `#${face.id}: ${face.label} ${Math.round(face.prob * 100)}%`;
    item.append(title);
    msg.labels.forEach((name, i) => {
      const row = document.createElement("div");
      row.className = "bar";
      const label = document.createElement("span");
      label.textContent = name;
      const bar = document.createElement("span");
      bar.style.width = `${Math.round(face.probs[i] * 100)}%`;
      bar.style.background = PALETTE[i % PALETTE.length];
      const value = document.createElement("span");
      value.textContent = `${Math.round(face.probs[i] * 100)}%`;
      row.append(label, bar, value);
      item.append(row);
    });
    return item;
  }));
}

function showStats() {
  const now = performance.now();
  const recent = stats.drawTimes.filter((t) => now - t < 1000).length;
  const last = stats.latencies.slice(-30).sort((a, b) => a - b);
  const median = last.length ? last[Math.floor(last.length / 2)] : 0;
  $("stats").textContent = `overlay ${recent} FPS · ${median.toFixed(0)} ms frame to overlay`;
}

function showCaption(msg) {
  const line = document.createElement("p");
  const text = document.createElement("span");
  text.className = ["cue", ...msg.classes].join(" ");
  text.textContent = msg.text;
  line.append(text);
  const box = $("captions");
  box.append(line);
  while (box.children.length > 3) box.firstElementChild.remove();
  stats.captions.push({ text: msg.text, classes: msg.classes, start: msg.start, end: msg.end,
                        shown: clock() });
}

$("start").onclick = start;
$("pause").onclick = () => {
  paused = !paused;
  $("pause").textContent = paused ? "Resume" : "Pause";
  if (!paused) pump();
};
$("smooth").onchange = () => send({ type: "smooth", on: $("smooth").checked });
$("labels").onchange = () => send({ type: "labels", labels: $("labels").value });
connect();
