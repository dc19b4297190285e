// The file page: upload a video, follow its progress, then play it annotated with its
// captions, chart each face's emotion over time and offer the results for download.
//
// The WebSocket is this page's connection: the studio keeps the upload and its results in
// a folder of that connection's own and removes it when the page closes.

const $ = (id) => document.getElementById(id);
const NAMES = { "annotated.mp4": "annotated video (MP4)", "captions.vtt": "captions (WebVTT)",
                "captions.srt": "captions (SRT)", "faces.jsonl": "faces (JSONL)",
                "summary.csv": "per-face summary (CSV)" };
const STEPS = { queued: "Starting…", faces: "Finding faces", speech: "Recognising speech…" };

let ws = null, connection = null, limits = null, uploading = false;
window.studioChart = null;  // what the chart shows, for the tests

function message(text, kind = "error") {
  const box = $("message");
  box.textContent = text || "";
  box.className = kind;
  box.hidden = !text;
}

function connect() {
  const scheme = location.protocol === "https:" ? "wss" : "ws";
  ws = new WebSocket(`${scheme}://${location.host}/ws/files`);
  ws.onmessage = (event) => handle(JSON.parse(event.data));
  ws.onclose = (event) => {
    connection = null;
    if (event.code === 1008) {
      message(`The studio refused this page's connection: ${event.reason || "not allowed"}.`);
      return;
    }
    message("The connection to the facecue studio was lost, and with it this page's " +
            "results. Reconnecting…");
    setTimeout(connect, 2000);
  };
}

function handle(msg) {
  if (msg.type === "hello") {
    connection = msg.connection;
    limits = msg;
    $("limit").textContent = `Up to ${(msg.max_bytes / 1048576).toFixed(0)} MB: ` +
                             msg.extensions.join(", ");
    if ($("message").textContent.startsWith("The connection")) message("");
    return;
  }
  if (msg.type === "job") return progress(msg);
  if (msg.type === "error") message(msg.message);
}

function pick(file) {
  if (!file) return;
  if (!connection) return message("Not connected to the facecue studio yet: wait a moment.");
  if (uploading) return message("A video is still being processed: wait for it to finish.");
  const dot = file.name.lastIndexOf(".");
  const ext = dot >= 0 ? file.name.slice(dot).toLowerCase() : "";
  if (!limits.extensions.includes(ext)) {
    return message(`${file.name} is not a video: facecue reads ` +
                   `${limits.extensions.join(", ")}.`);
  }
  if (file.size > limits.max_bytes) {
    return message(`${file.name} is ${(file.size / 1048576).toFixed(1)} MB, larger than this ` +
                   `studio's limit of ${(limits.max_bytes / 1048576).toFixed(0)} MB.`);
  }
  message("");
  $("result").hidden = true;
  upload(file);
}

function upload(file) {
  uploading = true;
  const bar = $("progress");
  bar.hidden = false;
  bar.value = 0;
  $("progress-text").textContent = `Uploading ${file.name}…`;
  const xhr = new XMLHttpRequest();
  xhr.open("POST", `/upload/${connection}`);
  xhr.setRequestHeader("X-Filename", encodeURIComponent(file.name));
  xhr.upload.onprogress = (event) => {
    if (event.lengthComputable) bar.value = event.loaded / event.total;
  };
  xhr.onload = () => {
    if (xhr.status === 202) {
      $("progress-text").textContent = "Processing…";
      return;
    }
    uploading = false;
    bar.hidden = true;
    $("progress-text").textContent = "";
    let why = `the studio answered ${xhr.status}`;
    try { why = JSON.parse(xhr.responseText).error; } catch { /* not JSON: keep the status */ }
    message(`${file.name} was not accepted: ${why}`);
  };
  xhr.onerror = () => {
    uploading = false;
    bar.hidden = true;
    $("progress-text").textContent = "";
    message(`The upload of ${file.name} was cut off (the studio stopped, or refused it).`);
  };
  xhr.send(file);
}

function progress(job) {
  const bar = $("progress");
  if (job.state === "faces" || job.state === "queued" || job.state === "speech") {
    bar.hidden = false;
    bar.value = job.progress;
    $("progress-text").textContent = job.state === "faces"
      ? `${STEPS.faces}: frame ${job.frames_done} of ${job.frames}` : STEPS[job.state];
    return;
  }
  uploading = false;
  bar.hidden = true;
  if (job.state === "failed") {
    $("progress-text").textContent = "";
    return message(job.message);
  }
  if (job.state === "done") {
    $("progress-text").textContent =
      `${job.name}: ${job.duration.toFixed(1)} s of video processed in ` +
      `${job.seconds.toFixed(1)} s; ${job.utterances} utterance(s).`;
    if (job.message) message(job.message, "note");
    showResult(job);
  }
}

async function showResult(job) {
  const base = `/files/${connection}`;
  const player = $("player"), track = $("track");
  player.src = `${base}/annotated.mp4`;
  track.src = `${base}/captions.vtt`;
  track.track.mode = "showing";
  $("downloads").replaceChildren("Download: ", ...job.files.map((name) => {
    const link = document.createElement("a");
    link.href = `${base}/${name}`;
    link.download = name;
    link.textContent = NAMES[name] || name;
    return link;
  }));
  $("result").hidden = false;
  const text = await (await fetch(`${base}/faces.jsonl`)).text();
  chart(text.split("\n").filter(Boolean).map((line) => JSON.parse(line)), job.duration);
}

// Each face a lane: one column per frame, coloured by the emotion shown (the captions'
// colours, read from /captions.css) and as tall as its probability.
function chart(records, duration) {
  const canvas = $("chart"), g = canvas.getContext("2d");
  const faces = new Map();
  for (const r of records) {
    const id = r.track_id ?? -1;
    if (!faces.has(id)) faces.set(id, []);
    faces.get(id).push(r);
  }
  const lane = 64, left = 48, bottom = 22, right = 8;
  canvas.height = Math.max(1, faces.size) * lane + bottom;
  const width = canvas.width - left - right;
  const end = Math.max(duration, ...records.map((r) => r.time), 0.001);
  g.clearRect(0, 0, canvas.width, canvas.height);
  g.font = "12px system-ui, sans-serif";
  const colours = {};
  const colour = (emotion) => colours[emotion] ??= cssColour(caption(emotion));
  const summary = [];
  let row = 0;
  for (const [id, points] of faces) {
    const top = row * lane + 4, height = lane - 12;
    g.fillStyle = "#9aa0a6";
    g.fillText(id >= 0 ? `#${id}` : "faces", 4, top + height / 2 + 4);
    const step = Math.max(1, width / (points.length || 1));
    const counts = {};
    for (const p of points) {
      const prob = p.emotion_probs[p.emotion];
      g.fillStyle = colour(p.emotion);
      g.fillRect(left + (p.time / end) * width, top + height * (1 - prob), step, height * prob);
      counts[p.emotion] = (counts[p.emotion] || 0) + 1;
    }
    const shares = Object.entries(counts).sort((a, b) => b[1] - a[1])
      .map(([emotion, n]) => `${emotion} ${Math.round((100 * n) / points.length)}%`);
    summary.push({ id, frames: points.length, shares });
    row += 1;
  }
  g.fillStyle = "#9aa0a6";
  const tick = end > 60 ? 10 : end > 20 ? 5 : 1;
  for (let t = 0; t <= end; t += tick) {
    g.fillText(`${t}s`, left + (t / end) * width - 6, canvas.height - 6);
  }
  const seen = [...new Set(records.map((r) => r.emotion))];
  $("legend").replaceChildren(...seen.map((emotion) => {
    const span = document.createElement("span");
    span.className = `cue ${caption(emotion)}`;
    span.textContent = emotion;
    return span;
  }));
  $("chart-summary").replaceChildren(...(summary.length ? summary.map((face) => {
    const item = document.createElement("li");
    item.textContent = `face ${face.id >= 0 ? `#${face.id}` : ""}: ${face.frames} frames, ` +
                       face.shares.join(", ");
    return item;
  }) : [Object.assign(document.createElement("li"), { textContent: "no faces found" })]));
  window.studioChart = { faces: summary, records: records.length };
}

// The captions' name of a label (ferplus8's "sadness" is their "sad"), for its CSS class.
const caption = (emotion) => (limits && limits.aliases[emotion]) || emotion;

function cssColour(emotion) {
  const probe = document.createElement("span");
  probe.className = `cue ${emotion}`;
  document.body.append(probe);
  const value = getComputedStyle(probe).color;
  probe.remove();
  return value;
}

$("file").onchange = (event) => pick(event.target.files[0]);
const drop = $("drop");
drop.ondragover = (event) => { event.preventDefault(); drop.classList.add("over"); };
drop.ondragleave = () => drop.classList.remove("over");
drop.ondrop = (event) => {
  event.preventDefault();
  drop.classList.remove("over");
  pick(event.dataTransfer.files[0]);
};
connect();
