// ndstyle serve: the page. Builds the form from /api/options (ndstyle.TransferOptions), uploads
// the files, follows the job with Server-Sent Events and draws the result. No external assets.
"use strict";

const $ = (id) => document.getElementById(id);
const state = { config: null, content: null, styles: [], job: null, events: null, costs: [] };

function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === null || v === undefined || v === false) continue;
    if (k === "text") node.textContent = v; else node.setAttribute(k, v === true ? "" : v);
  }
  for (const c of children) node.append(c);
  return node;
}

function modalityOf(name) {
  const lower = name.toLowerCase();
  let best = null, bestLen = 0;
  for (const m of state.config.modalities) {
    for (const ext of m.extensions) {
      if (lower.endsWith(ext) && ext.length > bestLen) { best = m; bestLen = ext.length; }
    }
  }
  return best;
}

function showError(message) {
  const box = $("error");
  box.textContent = message || "";
  box.hidden = !message;
}

function fmt(x) {
  if (x === null || x === undefined) return "–";
  if (x === 0) return "0";
  const a = Math.abs(x);
  return a >= 1e4 || a < 1e-3 ? x.toExponential(2) : x.toPrecision(4).replace(/\.?0+$/, "");
}

function seconds(s) {
  if (s === null || s === undefined) return "–";
  if (s < 60) return `${s.toFixed(s < 10 ? 1 : 0)} s`;
  const m = Math.floor(s / 60);
  return `${m} min ${Math.round(s - 60 * m)} s`;
}

// ---- the form, from the options object ----------------------------------------------------
function control(field) {
  const id = `opt-${field.name}`;
  const wrap = el("div", { class: "field", "data-name": field.name });
  if (field.modalities) wrap.dataset.modalities = field.modalities.join(" ");
  const label = el("label", { for: id, text: field.label });
  let input;
  if (field.kind === "bool") {
    wrap.classList.add("check");
    input = el("input", { type: "checkbox", id, name: field.name });
    input.checked = !!field.default;
    wrap.append(input, label);
  } else {
    if (field.kind === "choice") {
      input = el("select", { id, name: field.name });
      for (const c of field.choices) {
        const o = el("option", { value: c === null ? "" : String(c), text: c === null ? "default" : String(c) });
        if (c === field.default) o.selected = true;
        input.append(o);
      }
    } else if (field.kind === "file") {
      input = el("input", { type: "file", id, name: field.name });
    } else {
      const numeric = field.kind === "int" || field.kind === "float";
      input = el("input", { type: numeric ? "number" : "text", id, name: field.name });
      if (field.kind === "int") input.step = "1";
      if (field.kind === "float") input.step = "any";
      const d = field.default;
      if (d !== null && d !== undefined) input.value = Array.isArray(d) ? d.join(",") : String(d);
      else input.placeholder = "default";
    }
    wrap.append(label, input);
  }
  const help = field.default_text ? `${field.help} (default: ${field.default_text})` : field.help;
  if (help) wrap.append(el("span", { class: "help", text: help }));
  input.dataset.kind = field.kind;
  return wrap;
}

function buildForm() {
  const main = $("main-options"), other = $("other-options");
  const groups = new Map();
  for (const f of state.config.fields) {
    if (f.main) { main.append(control(f)); continue; }
    if (!groups.has(f.group)) {
      const fs = el("fieldset", {}, el("legend", { text: f.group }));
      fs.append(el("div", { class: "grid" }));
      groups.set(f.group, fs);
      other.append(fs);
    }
    groups.get(f.group).querySelector(".grid").append(control(f));
  }
  const exts = state.config.modalities.map((m) => `${m.name}: ${m.extensions.join(" ")}`).join(" · ");
  $("formats").textContent = `Accepted: ${exts}. Up to ${state.config.max_upload_mb} MB per job.`;
}

function applyModality() {
  const m = state.content ? modalityOf(state.content.name) : null;
  for (const node of document.querySelectorAll(".field[data-modalities]")) {
    node.hidden = !(m && node.dataset.modalities.split(" ").includes(m.name));
  }
  for (const fs of document.querySelectorAll("#other-options fieldset")) {
    fs.hidden = [...fs.querySelectorAll(".field")].every((f) => f.hidden);
  }
}

function collectOptions(form) {
  const options = {};
  for (const f of state.config.fields) {
    const input = $(`opt-${f.name}`);
    if (!input || input.closest(".field").hidden) continue;
    if (f.kind === "file") {
      if (input.files.length) form.append(f.name, input.files[0], input.files[0].name);
      continue;
    }
    if (f.kind === "bool") {
      if (input.checked !== !!f.default) options[f.name] = input.checked;
      continue;
    }
    const value = input.value.trim();
    const d = f.default === null || f.default === undefined ? "" : Array.isArray(f.default) ? f.default.join(",") : String(f.default);
    if (value !== d) options[f.name] = value === "" ? null : value;
  }
  return options;
}

// ---- files --------------------------------------------------------------------------------
function describeFile(file) {
  const m = modalityOf(file.name);
  const kb = file.size / 1024;
  const size = kb > 1024 ? `${(kb / 1024).toFixed(1)} MB` : `${Math.max(1, Math.round(kb))} kB`;
  return el("div", {}, file.name, el("span", { class: "modality", text: ` · ${m ? m.name : "unsupported"} · ${size}` }));
}

function setContent(files) {
  state.content = files[0] || null;
  $("content-name").replaceChildren(...(state.content ? [describeFile(state.content)] : []));
  applyModality();
  refreshButtons();
}

function setStyles(files) {
  state.styles = [...files].slice(0, state.config.max_styles);
  $("style-names").replaceChildren(...state.styles.map(describeFile));
  refreshButtons();
}

function wireDrop(zone, input, handler) {
  input.addEventListener("change", () => handler(input.files));
  zone.addEventListener("dragover", (e) => { e.preventDefault(); zone.classList.add("over"); });
  zone.addEventListener("dragleave", () => zone.classList.remove("over"));
  zone.addEventListener("drop", (e) => {
    e.preventDefault();
    zone.classList.remove("over");
    handler(e.dataTransfer.files);
  });
}

function running() { return !!(state.job && state.job.state === "running"); }

function refreshButtons() {
  $("start").disabled = running() || !state.content || state.styles.length === 0;
  $("cancel").disabled = !running() || (state.job && state.job.cancel_requested);
  const badge = $("server-state");
  badge.textContent = running() ? "busy" : "ready";
  badge.className = `badge ${running() ? "busy" : "idle"}`;
}

// ---- a job --------------------------------------------------------------------------------
async function start() {
  showError("");
  const form = new FormData();
  form.append("content", state.content, state.content.name);
  for (const s of state.styles) form.append("style", s, s.name);
  form.append("options", JSON.stringify(collectOptions(form)));
  $("start").disabled = true;
  $("result").hidden = true;
  $("bar").style.width = "0";
  $("bar").className = "";
  $("progress-text").textContent = "uploading…";
  let reply;
  try {
    const response = await fetch("/api/jobs", { method: "POST", body: form, headers: { "X-Ndstyle": "1" } });
    reply = await response.json();
    if (!response.ok) throw new Error(reply.error || `error ${response.status}`);
  } catch (error) {
    showError(error.message);
    refreshButtons();
    return;
  }
  state.costs = [];
  $("result").hidden = true;
  $("preview-box").hidden = true;
  $("chart-box").hidden = true;
  follow(reply);
}

async function cancel() {
  if (!state.job) return;
  $("cancel").disabled = true;
  $("progress-text").textContent += " · cancelling…";
  await fetch(`/api/jobs/${state.job.id}/cancel`, { method: "POST", headers: { "X-Ndstyle": "1" } });
}

function follow(job) {
  update(job);
  if (job.state !== "running") return;
  if (state.events) state.events.close();
  const events = new EventSource(`/api/jobs/${job.id}/events`);
  state.events = events;
  events.addEventListener("job", (e) => {
    const snap = JSON.parse(e.data);
    state.costs.push(...snap.new_costs);
    update(snap);
    if (snap.state !== "running") { events.close(); state.events = null; }
  });
  events.onerror = async () => {  // the stream ended or the connection dropped: ask once
    events.close();
    state.events = null;
    const response = await fetch(`/api/jobs/${job.id}`);
    if (response.ok) {
      const snap = await response.json();
      state.costs = snap.costs;
      if (snap.state === "running") follow(snap); else update(snap);
    }
  };
}

function update(job) {
  state.job = job;
  document.body.dataset.job = job.id;  // for scripts and tests: which job is shown, and its state
  document.body.dataset.state = job.state;
  if (job.costs) state.costs = job.costs;
  const p = job.progress;
  const bar = $("bar");
  bar.className = job.state === "done" ? "done" : job.state === "cancelled" ? "stopped" : job.state === "error" ? "failed" : "";
  if (p) {
    bar.style.width = `${Math.min(100, (100 * p.step) / Math.max(1, p.total_steps))}%`;
    const level = `level ${p.scale} (${p.shape.join("×")})`;
    const terms = `J=${fmt(p.total)}  content ${fmt(p.content)}  style ${fmt(p.style)}` + (p.tv ? `  tv ${fmt(p.tv)}` : "");
    const eta = job.state === "running" ? ` · ETA ${seconds(p.eta)}` : "";
    $("progress-text").textContent = `step ${p.step} / ${p.total_steps} · ${level} · ${terms} · ${seconds(p.seconds)}${eta}`;
  } else if (job.state === "running") {
    bar.style.width = "0";
    $("progress-text").textContent = "reading the files and preparing the network…";
  }
  if (job.state === "error") {
    showError(job.error);
    $("progress-text").textContent = "failed";
  } else if (job.state === "cancelled") {
    $("progress-text").textContent += " · cancelled";
  } else if (job.state === "done") {
    $("progress-text").textContent += " · done";
  }
  if (job.preview_step) {
    $("preview").src = `/api/jobs/${job.id}/preview.png?step=${job.preview_step}`;
    $("preview-caption").textContent = `best so far, step ${job.preview_step}`;
    $("preview-box").hidden = false;
  }
  drawChart();
  if (job.state !== "running") showResult(job);
  refreshButtons();
}

function drawChart() {
  const points = state.costs.filter((c) => c.total > 0 && Number.isFinite(c.total));
  if (points.length < 2) return;
  const logs = points.map((c) => Math.log10(c.total));
  const lo = Math.min(...logs), hi = Math.max(...logs);
  const span = hi > lo ? hi - lo : 1;
  const x = (i) => (300 * i) / (points.length - 1);
  const y = (v) => 115 - (110 * (v - lo)) / span;
  const svg = $("chart");
  const ns = "http://www.w3.org/2000/svg";
  const shapes = [];
  let d = "";
  points.forEach((c, i) => {  // one line per pyramid level: costs of different grids do not join
    const newLevel = i > 0 && c.scale !== points[i - 1].scale;
    if (newLevel) {
      const line = document.createElementNS(ns, "line");
      for (const [k, v] of [["x1", x(i)], ["x2", x(i)], ["y1", 0], ["y2", 120], ["class", "level"]]) line.setAttribute(k, v);
      shapes.push(line);
    }
    d += `${i === 0 || newLevel ? "M" : "L"}${x(i)},${y(logs[i])} `;
  });
  const path = document.createElementNS(ns, "path");
  path.setAttribute("d", d);
  svg.replaceChildren(...shapes, path);
  $("chart-box").hidden = false;
}

function showResult(job) {
  const base = `/api/jobs/${job.id}`;
  if (!job.result) { $("result").hidden = true; return; }
  $("result").hidden = false;
  $("download").href = `${base}/result`;
  $("download").setAttribute("download", job.download_name || "");
  $("result-note").textContent = job.state === "cancelled"
    ? "Cancelled: this is the best result so far." : `Written as ${job.download_name}, with the content file's metadata.`;
  const names = (n) => n.startsWith("style") ? (job.styles > 1 ? n.replace("style", "style ") : "style") : n;
  $("preview-box").hidden = true;  // the result below shows it in full
  $("pictures").replaceChildren(...job.pictures
    .filter((n) => !(n in job.slices))
    .map((n) => el("figure", {}, el("img", { src: `${base}/picture/${n}.png`, alt: names(n) }), el("figcaption", { text: names(n) }))));
  $("pictures").classList.toggle("small", Object.keys(job.slices).length > 0);
  $("slices").replaceChildren(...sliceViewers(job, base));
  $("media").replaceChildren(...job.media.flatMap((n) => [el("span", { text: names(n) }), el("audio", { controls: true, preload: "none", src: `${base}/media/${n}` })]));
  $("checks").replaceChildren(...checkItems(job.checks, job.check_values || {}, job.check_advice));
  const fieldBox = $("field-box");
  fieldBox.hidden = !(job.field_preview && (job.media.length || !job.pictures.length || job.modality === "signal"));
  if (!fieldBox.hidden) $("field").src = `${base}/field.png?v=${job.version}`;
}

function checkItems(checks, values, advice) {  // the field judge's checks (ndstyle.metrics), flagged ones first
  if (!checks) return [];
  const names = Object.keys(checks).sort((a, b) => Number(checks[a]) - Number(checks[b]));
  const label = (n) => `${checks[n] ? "✓" : "✗"} ${n.replaceAll("_", " ")}${values[n] ? `: ${values[n]}` : ""}`;
  const items = names.map((n) => el("li", { class: checks[n] ? "pass" : "flag", text: label(n) }));
  const failed = names.filter((n) => !checks[n]).length;
  const title = failed ? `Field checks: ${failed} flagged — look at the result before using it` : "Field checks: all passed";
  const hint = failed && advice ? [el("p", { class: "note", text: `Likely cause: ${advice}.` })] : [];
  return [el("span", { text: title }), el("ul", {}, ...items), ...hint];
}

function sliceViewers(job, base) {
  const names = Object.keys(job.slices);
  if (!names.length) return [];
  const shape = job.slices.result ? job.slices.result.shape : job.slices[names[0]].shape;
  const planes = job.slices[names[0]].planes;
  const note = el("p", { class: "note", text: job.slices[names[0]].radiological
    ? "Radiological view: the patient's right on the left, anterior/superior up. Move a slider to page through the slices."
    : "Voxel axes (no orientation known). Move a slider to page through the slices." });
  return [note, ...[0, 1, 2].map((axis) => {
    const n = shape[axis];
    const slider = el("input", { type: "range", min: 0, max: n - 1, value: Math.floor(n / 2), "aria-label": `${planes[axis]} slice` });
    const number = el("span", { class: "mono" });
    const imgs = names.map((name) => el("img", { alt: `${name} ${planes[axis]}` }));
    const show = () => {
      const i = Number(slider.value);
      number.textContent = `${i + 1} / ${n}`;
      names.forEach((name, k) => {
        const m = job.slices[name].shape[axis];
        const j = n > 1 ? Math.round((i * (m - 1)) / (n - 1)) : 0;
        imgs[k].src = `${base}/slice/${name}/${axis}/${j}.png`;
      });
    };
    slider.addEventListener("input", show);
    show();
    const figures = names.map((name, k) => el("figure", {}, imgs[k], el("figcaption", { text: name })));
    return el("div", { class: "slice-plane", "data-axis": axis },
      el("label", {}, planes[axis], slider, number), el("div", { class: "pair" }, ...figures));
  })];
}

// ---- start up -----------------------------------------------------------------------------
async function init() {
  try {
    const response = await fetch("/api/options");
    state.config = await response.json();
  } catch (error) {
    $("server-state").textContent = "server unreachable";
    return;
  }
  buildForm();
  applyModality();
  wireDrop($("drop-content"), $("content-file"), setContent);
  wireDrop($("drop-style"), $("style-files"), setStyles);
  $("start").addEventListener("click", start);
  $("cancel").addEventListener("click", cancel);
  if (state.config.job) follow(state.config.job);
  refreshButtons();
}

init();
