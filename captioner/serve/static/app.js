// The attention explorer: pick or drop a photo, get its caption word by word, and see where each word looked.
// The overlay is computed exactly as captioner/visualize.py draws its PNG figures: the grid of weights is
// upsampled bicubically the way Pillow does it (a = -0.5), scaled to [0, 1], and the photo is dimmed where
// attention is low and given a white glow where it is high. Nothing here loads anything from the internet.
"use strict";

const MAX_SIDE = 640; // the photo is drawn at most this wide or tall (in canvas pixels)
const $ = (id) => document.getElementById(id);
const state = {
  file: null, base: null, limits: null, grid: null, maps: { word: [], glimpse: [] },
  pinned: null, heat: new Map(), requestId: 0,
};

// -- overlay maths (mirrors captioner.visualize.upsample_attention / overlay_attention) ------------------------------
function bicubic(x) {
  const a = -0.5;
  x = Math.abs(x);
  if (x < 1) return ((a + 2) * x - (a + 3)) * x * x + 1;
  if (x < 2) return (((x - 5) * x + 8) * x - 4) * a;
  return 0;
}

function coefficients(inSize, outSize) {
  // Pillow's precompute_coeffs: for each output pixel, the first input index and the normalised tap weights.
  const scale = inSize / outSize, filterscale = Math.max(scale, 1), support = 2 * filterscale;
  const rows = [];
  for (let xx = 0; xx < outSize; xx++) {
    const center = (xx + 0.5) * scale;
    const first = Math.max(0, Math.trunc(center - support + 0.5));
    const last = Math.min(inSize, Math.trunc(center + support + 0.5));
    const weights = [];
    let total = 0;
    for (let x = first; x < last; x++) {
      const w = bicubic((x - center + 0.5) / filterscale);
      weights.push(w);
      total += w;
    }
    if (total !== 0) for (let k = 0; k < weights.length; k++) weights[k] /= total;
    rows.push({ first, weights });
  }
  return rows;
}

function upsample(alpha, [h, w], width, height) {
  // (h·w) weights, row-major → (height, width) map in [0, 1]; a flat map is all ones. Two passes in float32 as Pillow.
  const src = Float32Array.from(alpha);
  const cx = coefficients(w, width), cy = coefficients(h, height);
  const across = new Float32Array(h * width); // (h, width)
  for (let y = 0; y < h; y++) {
    for (let x = 0; x < width; x++) {
      const { first, weights } = cx[x];
      let sum = 0;
      for (let k = 0; k < weights.length; k++) sum += src[y * w + first + k] * weights[k];
      across[y * width + x] = sum;
    }
  }
  const out = new Float32Array(height * width); // (height, width)
  for (let y = 0; y < height; y++) {
    const { first, weights } = cy[y];
    for (let x = 0; x < width; x++) {
      let sum = 0;
      for (let k = 0; k < weights.length; k++) sum += across[(first + k) * width + x] * weights[k];
      out[y * width + x] = sum;
    }
  }
  let low = Infinity, high = -Infinity;
  for (const v of out) { if (v < low) low = v; if (v > high) high = v; }
  if (high - low <= 1e-6 * Math.max(Math.abs(high), Math.abs(low), 1e-12)) return out.fill(1);
  const f = Math.fround, range = f(high - low);
  for (let i = 0; i < out.length; i++) out[i] = f(f(out[i] - low) / range);
  return out;
}

function overlay(base, heat) {
  // lit = pixel · (0.2 + 0.8·heat); glow = lit + 0.55·heat^1.5·(255 − lit); float32 steps, truncated to 0..255.
  const f = Math.fround, c02 = f(0.2), c08 = f(0.8), c055 = f(0.55), c255 = f(255);
  const out = new ImageData(base.width, base.height);
  const src = base.data, dst = out.data;
  for (let i = 0; i < heat.length; i++) {
    const h = heat[i], gain = f(c02 + f(c08 * h)), shine = f(c055 * f(Math.pow(h, 1.5)));
    for (let c = 0; c < 3; c++) {
      const lit = f(src[4 * i + c] * gain);
      const glow = f(lit + f(shine * f(c255 - lit)));
      dst[4 * i + c] = Math.trunc(Math.min(255, Math.max(0, glow)));
    }
    dst[4 * i + 3] = 255;
  }
  return out;
}

// -- drawing ------------------------------------------------------------------------------------------------------
function show(kind, index) {
  // Draw the photo with map `index` of `kind` ("word" or "glimpse") overlaid, or the bare photo when index is null.
  const canvas = $("photo");
  if (!state.base) return;
  const context = canvas.getContext("2d");
  document.querySelectorAll(".word.shown").forEach((b) => b.classList.remove("shown"));
  if (index === null || index === undefined || !state.maps[kind][index]) {
    context.putImageData(state.base, 0, 0);
    canvas.dataset.showing = "photo";
    return;
  }
  const key = `${kind}:${index}`;
  if (!state.heat.has(key)) {
    const { grid, values } = state.maps[kind][index];
    state.heat.set(key, overlay(state.base, upsample(values, grid, canvas.width, canvas.height)));
  }
  context.putImageData(state.heat.get(key), 0, 0);
  canvas.dataset.showing = key;
  const button = document.querySelector(`[data-map="${key}"]`);
  if (button) button.classList.add("shown");
}

function showPinned() {
  if (state.pinned) show(state.pinned.kind, state.pinned.index);
  else show("word", null);
}

async function drawPhoto(file) {
  const bitmap = await createImageBitmap(file, { imageOrientation: "from-image" });
  const scale = Math.min(1, MAX_SIDE / Math.max(bitmap.width, bitmap.height));
  const canvas = $("photo");
  canvas.width = Math.max(1, Math.round(bitmap.width * scale));
  canvas.height = Math.max(1, Math.round(bitmap.height * scale));
  const context = canvas.getContext("2d", { willReadFrequently: true });
  context.imageSmoothingQuality = "high";
  context.drawImage(bitmap, 0, 0, canvas.width, canvas.height);
  bitmap.close();
  state.base = context.getImageData(0, 0, canvas.width, canvas.height);
  canvas.hidden = false;
  canvas.dataset.showing = "photo";
}

// -- talking to the server ------------------------------------------------------------------------------------------
function setStatus(message, isError = false) {
  $("status").textContent = message;
  $("status").classList.toggle("error", isError);
}

function options() {
  const beam = Math.min(Math.max(parseInt($("beam").value, 10) || 3, 1), state.limits ? state.limits.max_beam : 10);
  $("beam").value = beam;
  const block = $("trigram").checked;  // one switch for both repeat rules: trigrams and content words
  return { beam_size: String(beam), no_repeat_ngram_size: block ? "3" : "0", no_repeat_content_words: String(block) };
}

async function post(path, fields) {
  const form = new FormData();
  form.append("image", state.file, state.file.name || "photo");
  for (const [name, value] of Object.entries(fields)) form.append(name, value);
  const response = await fetch(path, { method: "POST", body: form });
  if (!response.ok) {
    let message = `${response.status} ${response.statusText}`;
    try { message = (await response.json()).error || message; } catch (_) { /* not JSON */ }
    throw new Error(message);
  }
  return response;
}

async function caption() {
  if (!state.file) return;
  const id = ++state.requestId;
  setStatus("Captioning…");
  $("download").disabled = true;
  try {
    const result = await (await post("/api/caption", options())).json();
    if (id !== state.requestId) return; // a newer photo or setting took over
    showCaption(result);
    setStatus(`"${result.caption}"`);
  } catch (error) {
    if (id === state.requestId) setStatus(error.message, true);
  }
}

function showCaption(result) {
  state.maps.word = result.attention.map((values) => ({ grid: result.grid, values }));
  for (const key of [...state.heat.keys()]) if (key.startsWith("word:")) state.heat.delete(key);
  if (state.pinned && state.pinned.kind === "word") state.pinned = null;
  const words = $("words");
  words.replaceChildren();
  const reduced = window.matchMedia("(prefers-reduced-motion: reduce)").matches;
  result.words.forEach((word, index) => {
    const button = mapButton(word, "word", index, `"${word}": show where this word looked`);
    button.style.animationDelay = reduced ? "0s" : `${index * 90}ms`; // the caption appears word by word
    words.append(button);
  });
  if (!result.words.length) words.textContent = "(the model produced no words)";
  $("beams").replaceChildren(...result.beams.map((beam) => {
    const item = document.createElement("li");
    const score = document.createElement("span");
    score.className = "score";
    score.textContent = `log-prob ${beam.score.toFixed(3)}`;
    item.append(beam.caption, score);
    return item;
  }));
  $("result").hidden = false;
  $("download").disabled = false;
  showPinned();
}

function mapButton(label, kind, index, description) {
  const button = document.createElement("button");
  button.type = "button";
  button.className = "word";
  button.textContent = label;
  button.dataset.map = `${kind}:${index}`;
  button.setAttribute("aria-pressed", "false");
  button.setAttribute("aria-label", description);
  button.addEventListener("pointerenter", () => show(kind, index));
  button.addEventListener("pointerleave", showPinned);
  button.addEventListener("focus", () => show(kind, index));
  button.addEventListener("blur", showPinned);
  button.addEventListener("click", () => pin(kind, index));
  button.addEventListener("keydown", (event) => moveFocus(event, button));
  return button;
}

function pin(kind, index) {
  const same = state.pinned && state.pinned.kind === kind && state.pinned.index === index;
  state.pinned = same ? null : { kind, index };
  document.querySelectorAll("[data-map]").forEach((b) => {
    b.setAttribute("aria-pressed", String(!same && b.dataset.map === `${kind}:${index}`));
  });
  if (same) show(kind, null); else show(kind, index);
}

function moveFocus(event, button) {
  if (event.key === "Escape") {
    state.pinned = null;
    document.querySelectorAll("[data-map]").forEach((b) => b.setAttribute("aria-pressed", "false"));
    show("word", null);
    return;
  }
  const step = { ArrowRight: 1, ArrowDown: 1, ArrowLeft: -1, ArrowUp: -1 }[event.key];
  if (!step) return;
  const siblings = [...button.parentElement.querySelectorAll("button")];
  const next = siblings[(siblings.indexOf(button) + step + siblings.length) % siblings.length];
  event.preventDefault();
  next.focus();
}

async function downloadFigure() {
  if (!state.file) return;
  $("download").disabled = true;
  setStatus("Drawing the figure…");
  try {
    const response = await post("/api/figure", options());
    const name = /filename="([^"]+)"/.exec(response.headers.get("Content-Disposition") || "");
    const url = URL.createObjectURL(await response.blob());
    const link = document.createElement("a");
    link.href = url;
    link.download = name ? name[1] : "attention.png";
    document.body.append(link);
    link.click();
    link.remove();
    setTimeout(() => URL.revokeObjectURL(url), 10000);
    setStatus(`Figure saved as ${link.download}`);
  } catch (error) {
    setStatus(error.message, true);
  } finally {
    $("download").disabled = false;
  }
}

async function ask(event) {
  event.preventDefault();
  const question = $("question").value.trim();
  if (!state.file) return setStatus("Choose a photo first.", true);
  if (!question) return setStatus("Type a question first.", true);
  setStatus("Thinking…");
  try {
    const result = await (await post("/api/ask", { question })).json();
    showAnswers(result);
    setStatus(`${question} → ${result.answers.length ? result.answers[0].answer : "no answer"}`);
  } catch (error) {
    setStatus(error.message, true);
  }
}

function showAnswers(result) {
  $("answers").replaceChildren(...result.answers.map(({ answer, probability }) => {
    const item = document.createElement("li");
    const bar = document.createElement("span");
    bar.className = "bar";
    bar.style.width = `${Math.round(probability * 8)}em`;
    const score = document.createElement("span");
    score.className = "score";
    score.textContent = `${(probability * 100).toFixed(1)}%`;
    item.append(answer, bar, score);
    return item;
  }));
  state.maps.glimpse = result.glimpses.map((values) => ({ grid: result.grid, values }));
  for (const key of [...state.heat.keys()]) if (key.startsWith("glimpse:")) state.heat.delete(key);
  if (state.pinned && state.pinned.kind === "glimpse") state.pinned = null;
  const names = result.glimpses.length === 1 ? ["attention"] : result.glimpses.map((_, g) => `glimpse ${g + 1}`);
  $("glimpses").replaceChildren(...names.map((name, g) => mapButton(name, "glimpse", g, `${name}: show where the question looked`)));
  showPinned();
}

// -- choosing a photo -------------------------------------------------------------------------------------------
async function choose(file) {
  if (!file) return;
  const limit = state.limits ? state.limits.max_upload_mb : 10;
  if (file.size > limit * 1024 * 1024) {
    return setStatus(`${file.name} is ${(file.size / 1048576).toFixed(1)} MB; the limit is ${limit} MB.`, true);
  }
  state.file = file;
  state.pinned = null;
  state.heat.clear();
  state.maps = { word: [], glimpse: [] };
  $("result").hidden = true; // the last photo's caption goes with it
  $("answers").replaceChildren();
  $("glimpses").replaceChildren();
  $("hint").textContent = "Drop another photo here, or";
  try {
    await drawPhoto(file);
  } catch (_) {
    state.base = null;
    $("photo").hidden = true; // the browser cannot show it; the server will say what is wrong
  }
  await caption();
}

function wireDropZone() {
  const zone = $("drop");
  for (const name of ["dragenter", "dragover"]) {
    zone.addEventListener(name, (event) => { event.preventDefault(); zone.classList.add("over"); });
  }
  for (const name of ["dragleave", "drop"]) zone.addEventListener(name, () => zone.classList.remove("over"));
  zone.addEventListener("drop", (event) => {
    event.preventDefault();
    choose(event.dataTransfer.files[0]);
  });
  $("file").addEventListener("change", (event) => choose(event.target.files[0]));
}

async function start() {
  wireDropZone();
  $("beam").addEventListener("change", caption);
  $("trigram").addEventListener("change", caption);
  $("download").addEventListener("click", downloadFigure);
  $("ask-form").addEventListener("submit", ask);
  try {
    const health = await (await fetch("/health")).json();
    state.limits = health.limits;
    $("beam").max = health.limits.max_beam;
    $("question").maxLength = health.limits.max_question_chars;
    const model = health.caption_model, encoder = model.encoder;
    $("model").textContent = `${model.name}: ${model.attention} attention over a ${encoder.grid_size.join("×")} grid of ` +
      `${encoder.name} at ${encoder.image_size} px, ${model.vocabulary} words, on ${model.device}` +
      (health.vqa_model ? `; questions: ${health.vqa_model.name}` : "");
    $("vqa").hidden = !health.vqa_model;
    document.body.dataset.ready = "true";
  } catch (error) {
    setStatus(`The server did not answer: ${error.message}`, true);
  }
}

start();
