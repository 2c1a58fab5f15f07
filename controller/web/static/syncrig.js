// Shared page code: API calls with the CSRF header, the server-sent event stream, the status bar
// and the jobs panel. Page scripts register handlers with SyncRig.on(kind, fn).
"use strict";
const SyncRig = (() => {
  const csrf = document.querySelector('meta[name="csrf-token"]').content;
  const handlers = {};
  const jobs = new Map();

  async function api(method, url, body) {
    const opts = {method, headers: {"X-CSRF-Token": csrf}};
    if (body !== undefined) {
      opts.headers["Content-Type"] = "application/json";
      opts.body = JSON.stringify(body);
    }
    const resp = await fetch(url, opts);
    let data = {};
    try { data = await resp.json(); } catch (e) { data = {error: `HTTP ${resp.status}`}; }
    if (!resp.ok) {
      const err = new Error(data.error || `HTTP ${resp.status}`);
      err.field = data.field; err.status = resp.status;
      throw err;
    }
    return data;
  }

  function on(kind, fn) { (handlers[kind] = handlers[kind] || []).push(fn); }
  function emit(kind, data) { (handlers[kind] || []).forEach(fn => fn(data)); }

  function el(tag, attrs = {}, ...children) {
    const node = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs)) {
      if (k === "class") node.className = v;
      else if (k.startsWith("data-")) node.setAttribute(k, v);
      else node[k] = v;
    }
    for (const c of children) node.append(c instanceof Node ? c : document.createTextNode(c ?? ""));
    return node;
  }

  const fmt = {
    bytes(n) {
      if (n == null) return "–";
      const u = ["B", "kB", "MB", "GB", "TB"]; let i = 0;
      while (n >= 1000 && i < u.length - 1) { n /= 1000; i++; }
      return `${n.toFixed(i ? 1 : 0)} ${u[i]}`;
    },
    secs(s) {
      if (s == null) return "–";
      const m = Math.floor(s / 60), r = s - 60 * m;
      return m ? `${m}:${r.toFixed(1).padStart(4, "0")}` : `${r.toFixed(1)} s`;
    },
    us(ns) { return ns == null ? "–" : `${(ns / 1000).toFixed(1)} µs`; },
  };

  function banner(text, kind = "error") {
    const b = document.getElementById("banner");
    if (!text) { b.hidden = true; return; }
    b.textContent = text; b.className = `banner ${kind}`; b.hidden = false;
  }

  function renderStatusBar(s) {
    const link = document.getElementById("link-state");
    link.textContent = s.link.connected ? `cam0 ${s.link.address}: connected` : `cam0 ${s.link.address}: offline`;
    link.className = `pill ${s.link.connected ? "ok" : "bad"}`;
    link.title = s.link.error || "";
    const rec = document.getElementById("rec-state");
    const r = s.recording;
    rec.textContent = r.state === "idle" ? "idle" :
      `${r.state}${r.session_id ? " " + r.session_id : ""}${r.elapsed_s != null ? " · " + fmt.secs(r.elapsed_s) : ""}`;
    rec.className = `pill ${r.state === "idle" ? "" : "rec"}`;
  }

  // The jobs panel: one card per job, in the page's flow (never over a table). A finished job
  // stays until dismissed (remembered across pages); each card shows elapsed time, an ETA from
  // its progress, a Cancel button while it runs, and its log with timestamps.
  const DISMISSED_KEY = "syncrig.dismissedJobs";
  const SHOW_FINISHED_S = 3600;  // after a reload, finished jobs of the last hour come back
  const dismissed = new Set(JSON.parse(localStorage.getItem(DISMISSED_KEY) || "[]"));
  const cards = new Map();

  function dismiss(id) {
    dismissed.add(id);
    localStorage.setItem(DISMISSED_KEY, JSON.stringify([...dismissed].slice(-200)));
    const card = cards.get(id);
    if (card) { card.root.remove(); cards.delete(id); }
  }

  function jobTimes(job, now) {
    if (job.started == null) return "queued";
    const elapsed = (job.finished ?? now) - job.started;
    if (job.finished != null) return `took ${fmt.secs(elapsed)}`;
    const p = job.progress;
    const eta = p > 0.01 && p < 1 ? `ETA ${fmt.secs(elapsed * (1 - p) / p)}` : "ETA unknown";
    return `elapsed ${fmt.secs(elapsed)} · ${eta}`;
  }

  function jobStatus(job) {
    if (job.state === "failed") return `failed: ${job.error}`;
    if (job.state === "cancelled") return "cancelled";
    if (job.state === "done") return "finished";
    const msg = job.message || job.state;
    return job.cancel_requested ? `${msg} (cancel requested)` : msg;
  }

  async function loadLog(id) {
    const card = cards.get(id);
    if (!card || !card.details.open) return;
    try {
      const j = await api("GET", `/api/jobs/${encodeURIComponent(id)}`);
      card.log.textContent = (j.log || []).join("\n") || "(nothing logged yet)";
    } catch (e) { card.log.textContent = e.message; }
  }

  function jobCard(job) {
    const cancel = el("button", {type: "button", class: "job-cancel",
      title: job.kind === "record" ? "Stop the recording (its footage is kept)" : "Cancel this job"}, "Cancel");
    cancel.addEventListener("click", async () => {
      cancel.disabled = true;
      try { await api("POST", `/api/jobs/${encodeURIComponent(job.id)}/cancel`, {}); }
      catch (e) { banner(e.message); cancel.disabled = false; }
    });
    const close = el("button", {type: "button", class: "job-dismiss", title: "Dismiss"}, "Dismiss");
    close.addEventListener("click", () => dismiss(job.id));
    const log = el("pre", {class: "log job-log"});
    const details = el("details", {}, el("summary", {}, "log"), log);
    details.addEventListener("toggle", () => loadLog(job.id));
    const card = {
      title: el("span", {class: "job-title"}), bar: el("progress", {max: 1}),
      msg: el("div", {class: "job-msg"}), times: el("div", {class: "job-times"}), cancel, close, log, details,
    };
    card.root = el("div", {class: "job", "data-job": job.id},
      el("div", {class: "job-head"}, card.title, cancel, close), card.bar, card.msg, card.times, details);
    return card;
  }

  function renderJobs() {
    const panel = document.getElementById("jobs-panel");
    const now = Date.now() / 1000;
    for (const job of jobs.values()) {
      const old = job.finished != null && now - job.finished > SHOW_FINISHED_S;
      if (job.kind === "logs" || dismissed.has(job.id) || old) continue;
      let card = cards.get(job.id);
      if (!card) { card = jobCard(job); cards.set(job.id, card); panel.prepend(card.root); }
      const active = job.state === "queued" || job.state === "running";
      card.root.className = `job ${job.state}`;
      card.title.textContent = job.title;
      card.bar.value = job.state === "done" ? 1 : job.progress;
      card.msg.textContent = jobStatus(job);
      card.times.textContent = jobTimes(job, now);
      card.cancel.hidden = !job.cancellable;
      card.cancel.disabled = job.cancel_requested;
      card.close.hidden = active;
    }
    // Several finished jobs: one button clears them all (running ones stay).
    const finished = [...cards.keys()].filter(id => !["queued", "running"].includes(jobs.get(id)?.state));
    let clear = document.getElementById("jobs-dismiss-all");
    if (finished.length >= 2 && !clear) {
      clear = el("button", {type: "button", id: "jobs-dismiss-all"}, "Dismiss finished jobs");
      clear.addEventListener("click", () => [...cards.keys()]
        .filter(id => !["queued", "running"].includes(jobs.get(id)?.state)).forEach(dismiss));
      panel.append(clear);
    }
    if (clear) clear.hidden = finished.length < 2;
  }

  function trackJob(j) {
    jobs.set(j.id, j); renderJobs(); emit("job", j);
    if (cards.has(j.id)) loadLog(j.id);
  }

  function connect() {
    const es = new EventSource("/api/events");
    es.addEventListener("status", ev => { const s = JSON.parse(ev.data); renderStatusBar(s); emit("status", s); });
    es.addEventListener("job", ev => trackJob(JSON.parse(ev.data)));
    for (const kind of ["preflight", "logs", "sessions"]) {
      es.addEventListener(kind, ev => emit(kind, JSON.parse(ev.data)));
    }
    es.onerror = () => {
      document.getElementById("link-state").textContent = "controller: reconnecting…";
    };
  }

  // A job's outcome, for page code that started it.
  function waitJob(id) {
    return new Promise(resolve => {
      const check = j => { if (j.id === id && !["queued", "running"].includes(j.state)) resolve(j); };
      on("job", check);
      api("GET", `/api/jobs/${id}`).then(check).catch(() => {});
    });
  }

  document.addEventListener("DOMContentLoaded", () => {
    connect();
    // Jobs that ran before this page was opened: the ones still running, and finished ones not
    // dismissed yet (the event stream only carries changes from now on).
    api("GET", "/api/jobs").then(({jobs: list}) => list.reverse().forEach(j => {
      if (!jobs.has(j.id)) { jobs.set(j.id, j); }
    })).then(renderJobs).catch(() => {});
  });
  setInterval(renderJobs, 1000);
  return {api, on, el, fmt, banner, waitJob};
})();
