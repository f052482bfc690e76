// piaa review: groups as strips; every correction is one POST, stored before the page shows it.
"use strict";

const $ = (sel) => document.querySelector(sel);
let groups = [];
let cur = { g: 0, f: 0 };
let polling = null;

async function api(path, body) {
  const opts = body === undefined ? {} : {
    method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body),
  };
  const res = await fetch(path, opts);
  const data = await res.json().catch(() => ({}));
  if (!res.ok && res.status !== 202) throw new Error(data.detail || `${res.status} ${res.statusText}`);
  return data;
}

function say(text, error = false) {
  const m = $("#message");
  m.textContent = text;
  m.classList.toggle("error", error);
}

function counts(state) {
  document.body.dataset.judgements = state.judgements;  // for tests and scripts driving the page
  const src = Object.entries(state.by_source || {}).map(([k, v]) => `${k} ${v}`).join(", ");
  $("#counts").textContent = `${state.groups} groups · ${state.judgements} judgements in the store` +
    (src ? ` (${src})` : "");
}

function frameEl(group, frame, gi, fi) {
  const b = document.createElement("button");
  b.type = "button";
  b.className = `frame ${frame.status}`;
  b.dataset.group = gi;
  b.dataset.frame = fi;
  b.dataset.name = frame.name;
  b.title = frame.name;
  const img = document.createElement("img");
  img.src = frame.thumb;
  img.alt = frame.name;
  img.loading = "lazy";
  b.append(img);
  if (frame.status !== "alternate") {
    const badge = document.createElement("span");
    badge.className = "badge";
    badge.textContent = frame.status === "pick" ? "PICK" : "REJECT";
    b.append(badge);
  }
  if (frame.flags.length) {
    const flags = document.createElement("span");
    flags.className = "flags";
    for (const f of frame.flags) {
      const s = document.createElement("span");
      s.className = "flag";
      s.textContent = f.replace("_", " ");
      flags.append(s);
    }
    b.append(flags);
  }
  const meta = document.createElement("span");
  meta.className = "meta";
  const name = document.createElement("span");
  name.textContent = frame.name.split("/").pop();
  const score = document.createElement("span");
  score.textContent = frame.score.toFixed(2);
  meta.append(name, score);
  b.append(meta);
  const x = document.createElement("span");
  x.className = "x";
  x.textContent = "✕";
  x.title = "reject (X)";
  x.setAttribute("role", "button");
  x.addEventListener("click", (ev) => { ev.stopPropagation(); act("reject", gi, frame.name); });
  b.append(x);
  b.addEventListener("click", () => { cur = { g: gi, f: fi }; act("choose", gi, frame.name); });
  return b;
}

function groupEl(group, gi) {
  const sec = document.createElement("section");
  sec.className = "group" + (group.accepted ? " accepted" : "");
  sec.id = `group-${gi}`;
  const h = document.createElement("h2");
  const t = document.createElement("span");
  t.textContent = `Group ${gi + 1} · ${group.frames.length} frame${group.frames.length > 1 ? "s" : ""}` +
    (group.accepted ? " · accepted" : "");
  const a = document.createElement("button");
  a.type = "button";
  a.className = "accept";
  a.textContent = "Accept (A)";
  a.addEventListener("click", () => { cur.g = gi; act("accept", gi); });
  h.append(t, a);
  const strip = document.createElement("div");
  strip.className = "strip";
  group.frames.forEach((f, fi) => strip.append(frameEl(group, f, gi, fi)));
  sec.append(h, strip);
  return sec;
}

function renderGroup(gi) {
  const old = document.getElementById(`group-${gi}`);
  const el = groupEl(groups[gi], gi);
  if (old) old.replaceWith(el); else $("#groups").append(el);
}

function render() {
  $("#groups").textContent = "";
  groups.forEach((_, gi) => renderGroup(gi));
  focus();
}

function focus(scroll = true) {
  document.querySelectorAll(".frame.focus").forEach((e) => e.classList.remove("focus"));
  document.querySelectorAll(".group.current").forEach((e) => e.classList.remove("current"));
  if (!groups.length) return;
  cur.g = Math.max(0, Math.min(cur.g, groups.length - 1));
  cur.f = Math.max(0, Math.min(cur.f, groups[cur.g].frames.length - 1));
  const sec = document.getElementById(`group-${cur.g}`);
  sec.classList.add("current");
  const fr = sec.querySelector(`.frame[data-frame="${cur.f}"]`);
  if (fr) {
    fr.classList.add("focus");
    if (scroll) fr.scrollIntoView({ block: "nearest", inline: "nearest" });
  }
}

let busy = false;
async function act(kind, gi, name) {
  if (busy) return;
  busy = true;
  document.body.dataset.busy = "1";
  try {
    const body = name === undefined ? { group: gi } : { group: gi, name };
    const res = await api(`/api/${kind}`, body);
    groups[gi] = res.group;
    renderGroup(gi);
    if (kind === "choose") cur.f = 0;
    focus();
    counts(res.state);
    say(`${kind === "choose" ? "pick changed" : kind === "reject" ? "frame rejected" : "group accepted"}` +
      ` · ${res.stored} preference${res.stored === 1 ? "" : "s"} stored` +
      (res.sidecar_problems.length ? ` · sidecar not rewritten: ${res.sidecar_problems.join("; ")}` : ""),
      res.sidecar_problems.length > 0);
  } catch (e) {
    say(`not saved: ${e.message}`, true);
  } finally {
    busy = false;
    document.body.dataset.busy = "0";
  }
}

async function load() {
  const res = await api("/api/groups");
  groups = res.groups;
  counts(res.state);
  render();
  document.body.dataset.busy = "0";
}

async function update() {
  try {
    await api("/api/update", {});
    $("#update").disabled = true;
    document.body.dataset.update = "running";
    say("updating your profile from every judgement in the store…");
    poll();
  } catch (e) {
    say(`cannot update: ${e.message}`, true);
  }
}

function poll() {
  clearTimeout(polling);
  polling = setTimeout(async () => {
    const st = await api("/api/update").catch((e) => ({ state: "error", message: e.message }));
    if (st.state === "running") return poll();
    $("#update").disabled = false;
    if (st.state === "done") {
      await load();
      say(`profile updated: trained on ${st.judgements} judgements (+${st.inferred} inferred); ` +
        `groups re-ranked · ${st.message}`, st.unmatched > 0);
    } else if (st.state === "refused") {
      say(`profile not updated: ${st.message}`, true);
    } else if (st.state === "error") {
      say(`update failed: ${st.message}`, true);
    }
    document.body.dataset.update = st.state;  // after the page shows the outcome
  }, 500);
}

document.addEventListener("keydown", (ev) => {
  if (ev.ctrlKey || ev.metaKey || ev.altKey || !groups.length) return;
  const g = groups[cur.g];
  switch (ev.key) {
    case "ArrowRight": cur.f += 1; break;
    case "ArrowLeft": cur.f -= 1; break;
    case "ArrowDown": cur.g += 1; cur.f = 0; break;
    case "ArrowUp": cur.g -= 1; cur.f = 0; break;
    case "Enter": act("choose", cur.g, g.frames[cur.f].name); break;
    case "x": case "X": act("reject", cur.g, g.frames[cur.f].name); break;
    case "a": case "A": act("accept", cur.g); break;
    default: return;
  }
  ev.preventDefault();
  focus();
});

$("#update").addEventListener("click", update);
load().catch((e) => say(`cannot load the groups: ${e.message}`, true));
