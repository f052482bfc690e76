// piaa collect: show a pair, record the choice, move on. No framework, no network beyond this server.
"use strict";

const $ = (id) => document.getElementById(id);
let pair = null; // {left: {name, url}, right: {name, url}}
let busy = false;
let state = null;
let polling = null;
let lastJob = null; // the latest training status seen
let toastTimer = null;

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
  $("counter").textContent = `${s.count} / ${s.target} pairs`;
  document.body.dataset.count = String(s.count);
  const showTrain = s.count >= s.target || s.training !== "idle";
  $("train").hidden = !showTrain;
  if (!s.reference) {
    $("train-note").textContent =
      "No --reference was given, so this ranks your album with a quick model of your choices. " +
      "Restart with --reference REF for the full personal model.";
  }
  const parts = [`${s.album} photos`, `pair choice: ${s.sampler.strategy}`];
  if (s.sampler.strategy === "active") {
    if (s.sampler.features !== "ready") parts.push(`features: ${s.sampler.features}`);
    else if (s.sampler.model_judgements == null) parts.push("random until 10 choices");
    else parts.push(`model from ${s.sampler.model_judgements} choices`);
  }
  if (s.skipped) parts.push(`${s.skipped} skipped`);
  if (s.album_skipped) parts.push(`${s.album_skipped} photos cannot be shown (listed where piaa collect runs)`);
  $("status").textContent = parts.join(" · ");
  if (lastJob && lastJob.state === "done") showTraining(lastJob); // "Train again" once choices changed
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

function viewing() { // the ranking or a before/after is on screen: the pair keys do nothing
  return !$("ranking").hidden || !$("retouch").hidden;
}

function choose(side) {
  if (!pair || viewing()) return;
  const other = side === "left" ? "right" : "left";
  return act(async () => {
    $(side).classList.add("chosen");
    await api("POST", "/api/choose", { preferred: pair[side].name, other: pair[other].name });
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
    const d = await api("POST", "/api/undo", {});
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
  if (job.state === "running") {
    box.hidden = false;
    button.disabled = true;
    button.textContent = "Training…";
    bar.classList.toggle("indeterminate", job.fraction == null);
    $("train-bar").style.width = job.fraction == null ? "" : `${(job.fraction * 100).toFixed(0)}%`;
    $("train-phase").textContent = `${job.phase} · ${Math.round(job.elapsed)} s`;
  } else if (job.state === "done") {
    box.hidden = true;
    button.disabled = false;
    const newer = state && state.count !== job.judgements;
    button.textContent = newer ? "Train again" : "Show ranking";
    $("train-title").textContent = newer
      ? `Last trained on ${job.judgements} choices; you now have ${state.count}.`
      : `Trained on ${job.judgements} choices.`;
  } else if (job.state === "error") {
    box.hidden = false;
    bar.classList.remove("indeterminate");
    $("train-bar").style.width = "0";
    $("train-phase").textContent = `Training failed: ${job.message}`;
    button.disabled = false;
    button.textContent = "Try again";
  }
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
    showTraining(job);
    if (job.state !== "running") {
      clearInterval(polling);
      if (job.state === "done") showRanking(job);
    }
  }, 400);
}

async function train() {
  const current = await api("GET", "/api/train");
  if (current.state === "done" && state && state.count === current.judgements) {
    showRanking(current);
    return;
  }
  try {
    showTraining(await api("POST", "/api/train", {}));
  } catch (err) {
    toast(err.message);
    return;
  }
  poll();
}

function showRanking(job) {
  const grid = $("grid");
  grid.replaceChildren();
  for (const r of job.ranking) {
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
  const personal = job.kind === "personal";
  $("ranking-kind").textContent = personal ? "your personal model" : "a quick model of your choices";
  $("ranking-note").textContent = personal
    ? `Scores on 1–10 from the profile saved in ${job.profile}. ` +
      `Score other photos with: piaa score PHOTOS --profile ${job.profile}. ` +
      "Click a photo to see it retouched toward your taste."
    : `Scores from a linear model of your ${job.judgements} choices (higher is better; only the order ` +
      "means something). Restart with --reference REF to train the full personal model.";
  $("collect").hidden = true;
  $("train").hidden = true;
  $("ranking").hidden = false;
  document.body.classList.add("scroll");
  window.scrollTo(0, 0);
}

// ------------------------------------------------------------------------------------ before/after

const KINDS = { original: "original", generic: "generic retouch", personal: "your retouch" };

async function showRetouch(name) {
  $("retouch-name").textContent = name;
  $("retouch-note").textContent = "Retouching… (exposure, colour and haze, found for each model)";
  $("retouch-images").replaceChildren();
  $("ranking").hidden = true;
  $("retouch").hidden = false;
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
  const how = d.method === "learned"
    ? "the learned retoucher saved with your profile"
    : "per-photo optimisation (the learned retoucher is still being trained)";
  const generic = d.generic ? "" : " This profile does not carry its generic model, so there is no generic retouch.";
  $("retouch-note").textContent =
    `Scores on 1–10 by both models. Parameters by ${how}. Your edit: ${edit}.${generic} ` +
    `Retouch full-size photos with: piaa retouch PHOTOS --profile ${lastJob ? lastJob.profile : "PROFILE"} --out DIR`;
  document.body.dataset.retouched = name;
}

function hideRetouch() {
  $("retouch").hidden = true;
  $("ranking").hidden = false;
}

function hideRanking() {
  $("ranking").hidden = true;
  document.body.classList.remove("scroll");
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

document.addEventListener("keydown", (e) => {
  if (e.ctrlKey || e.metaKey || e.altKey || e.repeat) return;
  const key = e.key.length === 1 ? e.key.toLowerCase() : e.key;
  const actions = { ArrowLeft: () => choose("left"), ArrowRight: () => choose("right"), s: skip, u: undo };
  if (key === "Escape" && !$("retouch").hidden) hideRetouch();
  else if (key === "Escape" && !$("ranking").hidden) hideRanking();
  if (!actions[key]) return;
  e.preventDefault();
  actions[key]();
});

act(loadNext).then(async () => {
  const job = await api("GET", "/api/train");
  showTraining(job);
  if (job.state === "running") poll();
});
