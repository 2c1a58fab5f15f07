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

  function renderJobs() {
    const panel = document.getElementById("jobs-panel");
    panel.replaceChildren();
    const now = Date.now() / 1000;
    for (const job of jobs.values()) {
      const recent = job.finished == null || now - job.finished < 8;
      if (!recent || job.kind === "logs") continue;
      const bar = el("progress", {max: 1, value: job.progress});
      const item = el("div", {class: `job ${job.state}`, "data-job": job.id},
        el("div", {class: "job-title"}, `${job.title}`),
        bar,
        el("div", {class: "job-msg"}, job.error ? `${job.state}: ${job.error}` : `${job.state} ${job.message || ""}`));
      panel.append(item);
    }
  }

  function connect() {
    const es = new EventSource("/api/events");
    es.addEventListener("status", ev => { const s = JSON.parse(ev.data); renderStatusBar(s); emit("status", s); });
    es.addEventListener("job", ev => {
      const j = JSON.parse(ev.data); jobs.set(j.id, j); renderJobs(); emit("job", j);
    });
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

  document.addEventListener("DOMContentLoaded", connect);
  setInterval(renderJobs, 2000);
  return {api, on, el, fmt, banner, waitJob};
})();
