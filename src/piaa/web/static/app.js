// piaa collect: show a pair, record the choice, move on. No framework, no network beyond this server.
"use strict";

const $ = (id) => document.getElementById(id);
let pair = null; // {left: {name, url}, right: {name, url}}
let busy = false;
let state = null;
let polling = null;
let lastJob = null; // the latest training status seen
let toastTimer = null;
let wantRanking = false; // the person asked to train: show the ranking as soon as it is there
let curveShown = null; // the model whose agreement is drawn

// One id per tab (kept across reloads of this tab): undo removes only what this tab stated.
const TAB = (() => {
  let id = sessionStorage.getItem("piaa-tab");
  if (!id) {
    id = (crypto.randomUUID ? crypto.randomUUID() : `${Date.now()}-${Math.random()}`).replace(/[^A-Za-z0-9-]/g, "");
    sessionStorage.setItem("piaa-tab", id);
  }
  return id;
})();

async function api(method, path, body) {
  const opts = { method, headers: {} };
  if (method === "POST") {
    opts.headers["Content-Type"] = "application/json";
    opts.body = JSON.stringify(body || {});
  }
  const r = await fetch(path, opts);
  const data = await r.json().catch(() => ({}));
  if (!r.ok) throw new Error(data.detail || data.message || r.statusText);
  return data;
}

function toast(text) {
  const el = $("toast");
  el.textContent = text;
  el.hidden = false;
  clearTimeout(toastTimer);
  toastTimer = setTimeout(() => { el.hidden = true; }, 2600);
}

function renderState(s) {
  state = s;
  const frac = Math.min(1, s.count / s.target);
  $("bar").style.width = `${(frac * 100).toFixed(1)}%`;
  $("counter").textContent = `${s.count} / ${s.target} judgements`;
  document.body.dataset.count = String(s.count);
  $("help-min").textContent = String(s.min_train);
  $("help-origin").textContent = `the ${s.origin}`;
  const showTrain = s.judged >= s.min_train || s.training !== "idle" || s.model_judgements != null;
  $("train").hidden = !showTrain || viewing();
  if (!showTrain) {
    $("train-title").textContent = `Your model trains from ${s.min_train} judgements on`;
  }
  if (s.training === "running" && !polling) poll(); // started by a choice, in the background
  const parts = [`${s.album} photos`, `pair choice: ${s.sampler.strategy}`];
  if (s.sampler.strategy === "active") {
    if (s.sampler.features !== "ready") parts.push(`features: ${s.sampler.features}`);
    else if (s.sampler.model_judgements == null) parts.push("random until 10 choices");
    else parts.push(`model from ${s.sampler.model_judgements} choices`);
  }
  if (s.skipped) parts.push(`${s.skipped} skipped`);
  if (s.album_skipped) parts.push(`${s.album_skipped} photos cannot be shown (listed where piaa collect runs)`);
  $("status").textContent = parts.join(" · ");
  if (lastJob) showTraining(lastJob); // "Train again" once choices changed
}

function showSide(side, photo) {
  const btn = $(side);
  const img = btn.querySelector("img");
  btn.classList.remove("chosen");
  btn.classList.add("loading");
  btn.disabled = false;
  btn.dataset.name = photo.name;
  btn.querySelector(".name").textContent = photo.name;
  img.onload = () => btn.classList.remove("loading");
  img.onerror = () => { btn.classList.remove("loading"); img.alt = `${photo.name} could not be shown (press S)`; };
  img.src = photo.url;
}

function showPair(p) {
  pair = p;
  $("empty").hidden = Boolean(p);
  $("pair").hidden = !p;
  if (p) {
    showSide("left", p.left);
    showSide("right", p.right);
  }
}

async function loadNext() {
  const d = await api("POST", "/api/pair", {}); // POST: drawing a pair uses it up
  showPair(d.pair);
  renderState(d.state);
}

async function act(fn) {
  if (busy) return; // one action at a time: a double click must not record two choices
  busy = true;
  document.body.dataset.busy = "1";
  try {
    await fn();
  } catch (err) {
    toast(`Something went wrong: ${err.message}`);
  } finally {
    busy = false;
    document.body.dataset.busy = "0";
  }
}

function viewing() { // the ranking, a before/after or the help is on screen: the pair keys do nothing
  return !$("ranking").hidden || !$("retouch").hidden || !$("help").hidden;
}

function choose(side) {
  if (!pair || viewing()) return;
  const other = side === "left" ? "right" : "left";
  return act(async () => {
    $(side).classList.add("chosen");
    await api("POST", "/api/choose", { preferred: pair[side].name, other: pair[other].name, tab: TAB });
    await loadNext();
  });
}

function skip() {
  if (!pair || viewing()) return;
  return act(async () => {
    await api("POST", "/api/skip", { a: pair.left.name, b: pair.right.name });
    await loadNext();
  });
}

function undo() {
  if (viewing()) return;
  return act(async () => {
    const d = await api("POST", "/api/undo", { tab: TAB });
    if (!d.undone) {
      toast("Nothing to undo.");
    } else {
      toast(`Undone: ${d.undone.preferred} over ${d.undone.other}`);
      if (d.undone.pair) showPair(d.undone.pair);
    }
    renderState(d.state);
  });
}

// ------------------------------------------------------------------------------------------ training

function showTraining(job) {
  lastJob = job;
  const box = $("train-progress");
  const bar = $("train-bar").parentElement;
  const button = $("train-button");
  const model = job.model;
  const judged = state ? state.judged : 0;
  $("ranking-button").hidden = !model;
  if (job.state === "running") {
    box.hidden = false;
    button.disabled = true;
    button.textContent = "Training…";
    bar.classList.toggle("indeterminate", job.fraction == null);
    $("train-bar").style.width = job.fraction == null ? "" : `${(job.fraction * 100).toFixed(0)}%`;
    $("train-phase").textContent = `${job.phase} (${job.judgements} judgements) · ${Math.round(job.elapsed)} s`;
    $("train-title").textContent = model
      ? `Your model has seen ${model.judgements} judgements; training on ${job.judgements} now.`
      : `Training your personal model on ${job.judgements} judgements.`;
    $("train-note").textContent = "Keep choosing meanwhile: every click is saved and counts in the next training.";
  } else if (job.state === "error") {
    box.hidden = false;
    bar.classList.remove("indeterminate");
    $("train-bar").style.width = "0";
    $("train-phase").textContent = `Training failed: ${job.message}`;
    button.disabled = false;
    button.textContent = "Try again";
  } else {
    box.hidden = true;
    button.disabled = false;
    if (!model) {
      button.textContent = "Train my model";
      $("train-title").textContent = "Enough choices to train your model.";
    } else if (judged > model.judgements) {
      button.textContent = `Train again with ${judged}`;
      $("train-title").textContent = `Your model has seen ${model.judgements} judgements; you now have ${judged}.`;
    } else {
      button.textContent = "Show my ranking";
      $("train-title").textContent = `Your model has seen all ${model.judgements} judgements.`;
    }
    $("train-note").textContent = "More choices, better model: keep going and train again whenever you like.";
  }
  if (!$("ranking").hidden && model) renderModel(model);
}

function poll() {
  clearInterval(polling);
  polling = setInterval(async () => {
    let job;
    try {
      job = await api("GET", "/api/train");
    } catch (err) {
      return; // the server may be busy; try again next tick
    }
    const hadModel = lastJob && lastJob.model ? lastJob.model.judgements : null;
    showTraining(job);
    if (job.model && job.model.judgements !== hadModel) {
      if (wantRanking) { wantRanking = false; showRanking(job); }
      else if ($("ranking").hidden) toast(`Your model is ready (${job.model.judgements} judgements): "Show my ranking"`);
    }
    const measuring = job.model && job.model.agreement_state === "measuring";
    if (job.state !== "running" && !measuring) {
      clearInterval(polling);
      polling = null;
    }
  }, 500);
}

async function train() {
  const current = await api("GET", "/api/train");
  if (current.state !== "running" && current.model && state && state.judged <= current.model.judgements) {
    showRanking(current);
    return;
  }
  if (current.state === "running") { wantRanking = true; poll(); return; }
  try {
    showTraining(await api("POST", "/api/train", {}));
  } catch (err) {
    toast(err.message);
    return;
  }
  wantRanking = true;
  poll();
}

function pct(x) { return `${Math.round(x * 100)}%`; }

function renderModel(model) {
  if (explained !== null && explained !== model.judgements) {
    explained = null;
    $("explain-axes").replaceChildren();
    $("explain-text").textContent = "Your model was retrained: explain it again.";
  }
  $("profile-path").textContent = model.profile;
  $("ranking-note").textContent =
    `Scores on 1–10 by your personal model, trained on ${model.judgements} of your judgements ` +
    `starting from the ${model.origin}. Click a photo to see it retouched toward your taste.`;
  const q = (p) => (/^[A-Za-z0-9_./-]+$/.test(p) ? p : `'${p.replace(/'/g, "'\\''")}'`);
  $("next-commands").textContent = [
    `piaa score PHOTOS --profile ${q(model.profile)}`,
    `piaa cull PHOTOS --profile ${q(model.profile)}`,
    `piaa retouch PHOTOS --profile ${q(model.profile)} --out DIR`,
  ].join("\n");
  const a = model.agreement;
  const text = $("agreement-text");
  document.body.dataset.agreement = model.agreement_state;
  if (model.agreement_state === "measuring") {
    text.textContent = "Measuring on pairs it did not train on… (the ranking is ready meanwhile)";
  } else if (model.agreement_state === "too-few") {
    text.textContent = "Too few judgements to measure yet: keep choosing and train again.";
  } else if (model.agreement_state === "error" || !a) {
    text.textContent = "The agreement could not be measured this time.";
  } else {
    text.textContent =
      `On ${a.pairs} pairs it did not train on, your model agrees with you ${pct(a.personal)} of the time ` +
      `(95% interval ${pct(a.personal_interval[0])}–${pct(a.personal_interval[1])}); ` +
      `the generic model ${pct(a.generic)}.`;
    text.dataset.personal = String(a.personal);
    text.dataset.generic = String(a.generic);
  }
  const key = a ? `${model.judgements}:${a.curve.length}` : null;
  if (key !== curveShown) {
    curveShown = key;
    drawCurve(a ? a.curve : []);
  }
}

function drawCurve(curve) {
  const svg = $("curve");
  svg.replaceChildren();
  svg.toggleAttribute("hidden", curve.length === 0); // an SVG element has no .hidden property
  if (!curve.length) return;
  const NS = svg.namespaceURI; // SVG's, from the element itself
  const el = (name, attrs, text) => {
    const e = document.createElementNS(NS, name);
    for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, String(v));
    if (text != null) e.textContent = text;
    svg.append(e);
    return e;
  };
  const L = 36, R = 310, T = 10, B = 140;
  const ns = curve.map((c) => c.judgements);
  const minN = Math.min(...ns), maxN = Math.max(...ns);
  const x = (n) => (maxN === minN ? (L + R) / 2 : L + 12 + ((R - L - 24) * (n - minN)) / (maxN - minN));
  const y = (v) => B - (B - T) * v;
  for (const v of [0, 0.5, 1]) {
    el("line", { x1: L, x2: R, y1: y(v), y2: y(v), class: v === 0.5 ? "chance" : "axis" });
    el("text", { x: L - 4, y: y(v) + 3, "text-anchor": "end" }, pct(v));
  }
  for (const c of curve) el("text", { x: x(c.judgements), y: B + 13, "text-anchor": "middle" }, String(c.judgements));
  el("text", { x: (L + R) / 2, y: B + 27, "text-anchor": "middle" }, "judgements — your model (solid), generic (dashed)");
  for (const who of ["generic", "personal"]) {
    const pts = curve.map((c) => `${x(c.judgements).toFixed(1)},${y(c[who]).toFixed(1)}`).join(" ");
    el("polyline", { points: pts, class: who });
    for (const c of curve) {
      const dot = el("circle", { cx: x(c.judgements), cy: y(c[who]), r: 3, class: who });
      dot.dataset.judgements = String(c.judgements);
    }
  }
}

function showRanking(job) {
  const model = job.model;
  if (!model) return;
  const grid = $("grid");
  grid.replaceChildren();
  for (const r of model.ranking) {
    const li = document.createElement("li");
    li.dataset.name = r.name;
    const img = document.createElement("img");
    img.loading = "lazy";
    img.src = r.thumb;
    img.alt = r.name;
    const meta = document.createElement("div");
    meta.className = "meta";
    meta.innerHTML = '<span class="rank"></span><span class="score"></span>';
    meta.querySelector(".rank").textContent = `#${r.rank}`;
    meta.querySelector(".score").textContent = r.score.toFixed(2);
    const name = document.createElement("span");
    name.className = "name";
    name.textContent = r.name;
    li.append(img, meta, name);
    if (job.retouch && job.retouch.available) {
      li.classList.add("retouchable");
      li.tabIndex = 0;
      li.title = "See this photo retouched toward your taste";
      li.addEventListener("click", () => act(() => showRetouch(r.name)));
      li.addEventListener("keydown", (e) => { if (e.key === "Enter") act(() => showRetouch(r.name)); });
    }
    grid.append(li);
  }
  $("ranking-kind").textContent = "your personal model";
  curveShown = null;
  $("collect").hidden = true;
  $("train").hidden = true;
  $("help").hidden = true;
  $("ranking").hidden = false;
  $("question").textContent = "Your album, ranked by your taste";
  document.body.classList.add("scroll");
  renderModel(model);
  document.body.dataset.ranked = String(model.judgements);
  window.scrollTo(0, 0);
  if (model.agreement_state === "measuring" && !polling) poll();
}

// ------------------------------------------------------------------------------- what it learnt

let explained = null; // the model (by judgements) whose explanation is on screen

function strip(names, thumbs) {
  const div = document.createElement("div");
  div.className = "explain-strip";
  for (const n of names) {
    const img = document.createElement("img");
    img.src = thumbs[n];
    img.alt = n;
    img.title = n;
    div.append(img);
  }
  return div;
}

async function explainTaste() {
  const box = $("explain-axes");
  $("explain-text").textContent = "Fitting your judgements on named attributes…";
  box.replaceChildren();
  let d;
  try {
    d = await api("POST", "/api/explain");
  } catch (err) {
    $("explain-text").textContent = `Could not explain your model: ${err.message}`;
    return;
  }
  explained = lastJob && lastJob.model ? lastJob.model.judgements : null;
  const shown = d.axes.filter((a) => a.shown).sort((a, b) => Math.abs(b.weight) - Math.abs(a.weight));
  $("explain-text").textContent =
    `${d.pairs} pairs, ${d.folds}-fold cross-validation. The crowd's score (${d.generic}) alone orders ` +
    `${pct(d.accuracy_crowd)} of them as you did; these attributes, held out, ${pct(d.accuracy_cv)}. ` +
    (shown.length ? "Shown: only weights the fit supports." : "Nothing the fit supports yet: judge more pairs.");
  const span = Math.max(1e-6, ...shown.map((a) => Math.abs(a.weight)));
  for (const a of shown) {
    const row = document.createElement("div");
    row.className = "explain-axis";
    row.dataset.axis = a.name;
    const label = document.createElement("span");
    label.className = "explain-label";
    label.textContent = `${a.name} ${a.weight >= 0 ? "+" : ""}${a.weight.toFixed(2)}: ${a.describe}`;
    const bar = document.createElement("span");
    bar.className = `explain-bar ${a.weight >= 0 ? "more" : "less"}`;
    bar.style.width = `${Math.round((Math.abs(a.weight) / span) * 100)}%`;
    const ends = document.createElement("div");
    ends.className = "explain-ends";
    for (const [label, photos] of [["highest", a.high], ["lowest", a.low]]) {
      const end = document.createElement("span");
      end.className = "explain-end";
      end.append(label, strip(photos, d.thumbs));
      ends.append(end);
    }
    row.append(label, bar, ends);
    box.append(row);
  }
  const hidden = d.axes.filter((a) => !a.shown);
  if (hidden.length) {
    const p = document.createElement("p");
    p.className = "explain-hidden";
    p.textContent = "Not shown: " + hidden.map((a) => `${a.name} (${a.reason})`).join("; ");
    box.append(p);
  }
  document.body.dataset.explained = String(shown.length);
}

// ------------------------------------------------------------------------------------ before/after

const KINDS = { original: "original", generic: "generic retouch", personal: "your retouch" };

async function showRetouch(name) {
  $("retouch-name").textContent = name;
  $("retouch-note").textContent = "Retouching… (exposure, colour and haze, found for each model)";
  $("retouch-images").replaceChildren();
  $("ranking").hidden = true;
  $("retouch").hidden = false;
  $("question").textContent = "Before and after: retouched toward your taste";
  window.scrollTo(0, 0);
  let d;
  try {
    d = await api("POST", "/api/retouch", { name });
  } catch (err) {
    $("retouch-note").textContent = `Could not retouch ${name}: ${err.message}`;
    return;
  }
  const models = Object.keys(d.scores); // "personal" and, when the profile carries it, "generic"
  for (const kind of Object.keys(d.images)) {
    const fig = document.createElement("figure");
    fig.dataset.kind = kind;
    const img = document.createElement("img");
    img.src = d.images[kind];
    img.alt = `${name}: ${KINDS[kind]}`;
    const cap = document.createElement("figcaption");
    cap.textContent = KINDS[kind];
    for (const m of models) {
      const line = document.createElement("span");
      line.className = "scores";
      line.dataset.model = m;
      line.textContent = `${m === "personal" ? "your model" : "generic model"}: `;
      const b = document.createElement("b");
      b.textContent = d.scores[m][kind].toFixed(2);
      line.append(b);
      cap.append(line);
    }
    fig.append(img, cap);
    $("retouch-images").append(fig);
  }
  const edit = Object.entries(d.params)
    .map(([op, p]) => `${op}: ` + Object.entries(p).map(([k, v]) => `${k} ${v >= 0 ? "+" : ""}${v.toFixed(2)}`).join(", "))
    .join("; ");
  const preparing = lastJob && lastJob.retouch && lastJob.retouch.retoucher === "preparing";
  const how = d.method === "learned"
    ? "the learned retoucher saved with your profile"
    : `per-photo optimisation${preparing ? " (the learned retoucher is still being trained)" : ""}`;
  const generic = d.generic ? "" : " This profile does not carry its generic model, so there is no generic retouch.";
  $("retouch-note").textContent =
    `Scores on 1–10 by both models. Parameters by ${how}. Your edit: ${edit}.${generic} ` +
    `Retouch full-size photos with: piaa retouch PHOTOS --profile ${lastJob && lastJob.model ? lastJob.model.profile : "PROFILE"} --out DIR`;
  document.body.dataset.retouched = name;
}

function hideRetouch() {
  $("retouch").hidden = true;
  $("ranking").hidden = false;
  $("question").textContent = "Your album, ranked by your taste";
}

function hideRanking() {
  $("ranking").hidden = true;
  $("help").hidden = true;
  document.body.classList.remove("scroll");
  $("question").textContent = "Which photo do you prefer?";
  $("collect").hidden = false;
  if (state) renderState(state);
  api("GET", "/api/train").then(showTraining).catch(() => {});
}

// ------------------------------------------------------------------------------------------- wiring

$("left").addEventListener("click", () => choose("left"));
$("right").addEventListener("click", () => choose("right"));
$("skip").addEventListener("click", skip);
$("undo").addEventListener("click", undo);
$("train-button").addEventListener("click", () => act(train));
$("back").addEventListener("click", hideRanking);
$("retouch-close").addEventListener("click", hideRetouch);
$("explain-button").addEventListener("click", () => act(explainTaste));
$("ranking-button").addEventListener("click", () => { if (lastJob && lastJob.model) showRanking(lastJob); });
$("help-link").addEventListener("click", (e) => {
  e.preventDefault();
  $("collect").hidden = true;
  $("train").hidden = true;
  $("help").hidden = false;
  $("question").textContent = "How this works";
});
$("help-close").addEventListener("click", hideRanking);

document.addEventListener("keydown", (e) => {
  if (e.ctrlKey || e.metaKey || e.altKey || e.repeat) return;
  const key = e.key.length === 1 ? e.key.toLowerCase() : e.key;
  const actions = { ArrowLeft: () => choose("left"), ArrowRight: () => choose("right"), s: skip, u: undo };
  if (key === "Escape" && !$("retouch").hidden) hideRetouch();
  else if (key === "Escape" && (!$("ranking").hidden || !$("help").hidden)) hideRanking();
  if (!actions[key]) return;
  e.preventDefault();
  actions[key]();
});

act(loadNext).then(async () => {
  const job = await api("GET", "/api/train");
  showTraining(job);
  if (job.state === "running" || (job.model && job.model.agreement_state === "measuring")) poll();
});
