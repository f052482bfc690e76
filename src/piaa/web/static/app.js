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

function choose(side) {
  if (!pair || !$("ranking").hidden) return;
  const other = side === "left" ? "right" : "left";
  return act(async () => {
    $(side).classList.add("chosen");
    await api("POST", "/api/choose", { preferred: pair[side].name, other: pair[other].name });
    await loadNext();
  });
}

function skip() {
  if (!pair || !$("ranking").hidden) return;
  return act(async () => {
    await api("POST", "/api/skip", { a: pair.left.name, b: pair.right.name });
    await loadNext();
  });
}

function undo() {
  if (!$("ranking").hidden) return;
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
    grid.append(li);
  }
  const personal = job.kind === "personal";
  $("ranking-kind").textContent = personal ? "your personal model" : "a quick model of your choices";
  $("ranking-note").textContent = personal
    ? `Scores on 1–10 from the profile saved in ${job.profile}. ` +
      `Score other photos with: piaa score PHOTOS --profile ${job.profile}`
    : `Scores from a linear model of your ${job.judgements} choices (higher is better; only the order ` +
      "means something). Restart with --reference REF to train the full personal model.";
  $("collect").hidden = true;
  $("train").hidden = true;
  $("ranking").hidden = false;
  document.body.classList.add("scroll");
  window.scrollTo(0, 0);
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

document.addEventListener("keydown", (e) => {
  if (e.ctrlKey || e.metaKey || e.altKey || e.repeat) return;
  const key = e.key.length === 1 ? e.key.toLowerCase() : e.key;
  const actions = { ArrowLeft: () => choose("left"), ArrowRight: () => choose("right"), s: skip, u: undo };
  if (key === "Escape" && !$("ranking").hidden) hideRanking();
  if (!actions[key]) return;
  e.preventDefault();
  actions[key]();
});

act(loadNext).then(async () => {
  const job = await api("GET", "/api/train");
  showTraining(job);
  if (job.state === "running") poll();
});
