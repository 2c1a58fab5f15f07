"use strict";
(() => {
  const {api, on, el, fmt} = SyncRig;
  const form = document.getElementById("record-form");
  const startBtn = document.getElementById("start-btn");
  const stopBtn = document.getElementById("stop-btn");
  const errorBox = document.getElementById("record-error");

  function showError(text) { errorBox.textContent = text || ""; errorBox.hidden = !text; }

  form.addEventListener("submit", async ev => {
    ev.preventDefault();
    showError("");
    const body = {
      subject: document.getElementById("subject").value.trim() || null,
      project: document.getElementById("project").value.trim() || null,
      seconds: document.getElementById("seconds").value || null,
      override: document.getElementById("override").checked,
      exclude: [...document.querySelectorAll("#exclude-box input:checked")].map(i => i.value),
    };
    startBtn.disabled = true;
    try {
      const {job_id} = await api("POST", "/api/recording/start", body);
      const job = await SyncRig.waitJob(job_id);
      if (job.state === "failed") showError(job.error);
      loadRecent();
    } catch (e) {
      showError(e.message);
    } finally {
      startBtn.disabled = false;
    }
  });

  // An empty ID is allowed, never silently: the warning (its words are the server's) shows while
  // the field is empty.
  const idWarning = document.getElementById("id-warning");
  function showIdWarning() {
    const missing = ["subject", "project"].filter(k => !document.getElementById(k).value.trim());
    idWarning.textContent = missing.map(k => idWarning.dataset[k]).join("; ");
    idWarning.hidden = !missing.length;
  }
  ["subject", "project"].forEach(k => document.getElementById(k).addEventListener("input", showIdWarning));
  showIdWarning();

  // The end-of-recording summary: what each camera recorded, what it dropped and why, whether the
  // desktop copy is verified, and where the files are.
  async function showSummary(sessionId) {
    const d = await api("GET", `/api/sessions/${encodeURIComponent(sessionId)}`);
    const cams = d.manifest.cameras || [];
    const footage = (d.footage && d.footage.cameras) || {};
    const link = document.getElementById("sum-session");
    link.textContent = sessionId; link.href = `/sessions/${encodeURIComponent(sessionId)}`;
    const verdict = document.getElementById("sum-verdict");
    verdict.className = `verdict ${d.safe_on_desktop ? "ok" : "bad"}`;
    verdict.textContent = d.safe_on_desktop
      ? `Every camera's footage is verified on this desktop: ${cams.length} cameras, ${fmt.secs(d.duration_s)}.`
      : "Not every camera's footage is verified on this desktop: see the cameras below and the session page.";
    document.querySelector("#sum-cameras tbody").replaceChildren(...cams.map(c => {
      const causes = Object.entries(c.drops || {}).filter(([, n]) => n).map(([k, n]) => `${n} ${k.replaceAll("_", " ")}`);
      const safe = footage[c.name] || {};
      return el("tr", {"data-camera": c.name, class: safe.safe ? "" : "bad"},
        el("td", {}, c.name), el("td", {}, String(c.frames)), el("td", {}, String(c.expected_frames ?? "–")),
        el("td", {}, String(c.dropped)), el("td", {}, causes.join(", ") || "none"),
        el("td", {}, safe.safe ? "verified" : `not verified: ${(safe.problems || []).join("; ")}`));
    }));
    document.getElementById("sum-path").textContent = d.path;
    const onCams = Object.entries(d.on_cameras || {}).filter(([, v]) => v).map(([k]) => k);
    document.getElementById("sum-cams-copy").textContent = onCams.length
      ? `The cameras keep their own copies (${onCams.join(", ")}) until freed on the session page.` : "";
    document.getElementById("rec-summary").hidden = false;
  }
  const summarised = j => j.kind === "record" && j.state === "done" && j.result && j.result.session_id;
  on("job", j => { if (summarised(j)) showSummary(j.result.session_id).catch(e => showError(e.message)); });
  // Opened after a recording ended: its summary still shows (the newest recording this controller made).
  api("GET", "/api/jobs?kind=record").then(({jobs}) => {
    const last = jobs.find(summarised);
    if (last && document.getElementById("rec-summary").hidden) return showSummary(last.result.session_id);
  }).catch(() => {});

  stopBtn.addEventListener("click", async () => {
    try { await api("POST", "/api/recording/stop", {}); } catch (e) { showError(e.message); }
  });

  function syncText(sync) {
    if (!sync) return "not reported";
    const lock = sync.state === "synchronized" ? "locked" : sync.state;
    const port = sync.port_state ? ` ${sync.port_state}` : "";
    const off = sync.offset_ns != null ? ` ${fmt.us(sync.offset_ns)}` : "";
    return `${lock} · ${sync.source}${port}${off}`;
  }

  // "out strobe 6, start 5 · in lick 17 (4 edges, gates recording)", from the agent's STATUS.
  function ttlText(ttl) {
    const lines = ttl.lines || {};
    const outs = Object.entries(lines.outputs || {}).map(([role, line]) => `${role} ${line}`);
    // STATUS lists the inputs in the order of lines.inputs (the agent's settings).
    const inLines = lines.inputs || [];
    const ins = Object.entries(ttl.inputs || {}).map(([name, i], k) =>
      `${name}${inLines[k] != null ? ` ${inLines[k]}` : ""} (${i.edges ?? 0} edges${i.record ? ", gates recording" : ""})`);
    const parts = [outs.length ? `out ${outs.join(", ")}` : "", ins.length ? `in ${ins.join(", ")}` : ""];
    return parts.filter(Boolean).join(" · ") || "none";
  }

  function card(c) {
    const t = c.throttled;
    const throttle = t == null ? "n/a" :
      Object.entries(t).filter(([k, v]) => v && k !== "raw" && !k.endsWith("_occurred")).map(([k]) => k).join(", ") || "ok";
    const clock = c.clock || {};
    const clockState = clock.state || clock.servo_state || clock.kind || "–";
    const rows = [
      ["State", c.online ? (c.state || "–") : "offline"],
      ["Frames", c.frames ?? "–"],
      ["Dropped", c.dropped ?? "–"],
      ["FPS", c.fps != null ? c.fps.toFixed(1) : "–"],
      ["Disk free", fmt.bytes(c.disk_free_bytes)],
      ["Temp", c.temperature_c != null ? `${c.temperature_c.toFixed(1)} °C` : "n/a"],
      ["Throttling", throttle],
      ["Streamed", c.stream ? `${c.stream.frames_received}${c.stream.restarts ? ` (${c.stream.restarts} restarts)` : ""}` : "–"],
      ["Clock", clock.reference ? `${clockState} (reference)` : `${clockState} ${fmt.us(clock.offset_to_cam0_ns)}`],
      // What disciplines the camera's clock (ptp4l + phc2sys, chrony, ...), as the agent reports it.
      ["Time sync", syncText(c.clock_sync), c.clock_sync ? c.clock_sync.detail : ""],
    ];
    // Free-running sensors (a Pi's; the demo's --sensor freerun): the servo's lock onto the grid.
    const lock = c.phase_lock;
    if (lock) rows.push(["Sensor lock", lock.error ? `${lock.label} – ${lock.error}` : lock.label,
      "phase of the sensor's frames against the grid Tn = T0 + n·P"]);
    if (c.ttl) rows.push(["TTL", ttlText(c.ttl), "GPIO lines this camera drives (out) and reads (in)"]);
    return el("div", {class: `card ${c.online ? "" : "offline"}`, "data-camera": c.name},
      el("h3", {}, `${c.name} `, el("small", {}, `${c.role} · ${c.host}`)),
      el("dl", {}, ...rows.flatMap(([k, v, title]) => [el("dt", {}, k),
        el("dd", {"data-field": k.toLowerCase().replace(" ", "_"), title: title || ""}, String(v))])),
      c.error ? el("div", {class: "error"}, c.error) : "",
      el("button", {type: "button", class: "restart-btn", "data-camera": c.name}, "Restart agent"));
  }

  // One "leave out" box per camera, built once (the cards are rebuilt on every status).
  function excludeBoxes(cameras) {
    const box = document.getElementById("exclude-box");
    if (box.querySelector("input")) return;
    box.append(...cameras.map(c => el("label", {class: "check"},
      el("input", {type: "checkbox", value: c.name, name: "exclude"}), ` ${c.name}`)));
  }

  document.getElementById("cards").addEventListener("click", async ev => {
    const btn = ev.target.closest(".restart-btn");
    if (!btn) return;
    showError("");
    btn.disabled = true;
    try {
      const job = await SyncRig.waitJob((await api("POST", `/api/cameras/${encodeURIComponent(btn.dataset.camera)}/restart`, {})).job_id);
      if (job.state === "failed") showError(job.error);
    } catch (e) { showError(e.message); }
  });

  on("status", s => {
    document.getElementById("cards").replaceChildren(...s.cameras.map(card));
    excludeBoxes(s.cameras);
    const r = s.recording;
    document.getElementById("rec-state-big").textContent = r.state;
    document.getElementById("rec-session").textContent = r.session_id || "–";
    document.getElementById("rec-elapsed").textContent =
      r.elapsed_s != null ? `${fmt.secs(r.elapsed_s)}${r.planned_seconds ? " / " + fmt.secs(r.planned_seconds) : ""}` : "–";
    const busy = r.state !== "idle";
    // The whole form is locked while a recording runs: what it says is what is being recorded.
    document.getElementById("record-fields").disabled = busy;
    startBtn.disabled = busy;
    stopBtn.disabled = !(r.state === "recording" || r.state === "starting");
    if (r.error && r.state === "idle") showError(r.error);
  });

  async function loadRecent() {
    const {sessions} = await api("GET", "/api/sessions");
    const body = document.querySelector("#recent tbody");
    body.replaceChildren(...sessions.slice(0, 8).map(s => el("tr", {"data-session": s.id},
      el("td", {}, el("a", {href: `/sessions/${encodeURIComponent(s.id)}`}, s.id)),
      el("td", {}, s.subject || ""), el("td", {}, s.project || ""),
      el("td", {}, fmt.secs(s.duration_s)),
      el("td", {}, Object.values(s.frames || {}).join(" / ")),
      el("td", {}, String(s.dropped ?? "")))));
  }
  on("sessions", loadRecent);
  loadRecent();
})();
