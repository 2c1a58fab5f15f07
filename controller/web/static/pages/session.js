"use strict";
(() => {
  const {api, el, fmt} = SyncRig;
  const id = document.getElementById("session").dataset.session;
  async function load() {
    const d = await api("GET", `/api/sessions/${encodeURIComponent(id)}`);
    const m = d.manifest;
    const dur = m.stop_ns && m.t0_ns ? (m.stop_ns - m.t0_ns) / 1e9 : null;
    document.getElementById("s-summary").replaceChildren(
      ...[["Subject", m.subject || "–"], ["Project", m.project || "–"], ["Created", m.created], ["FPS", m.fps],
          ["Duration", fmt.secs(dur)], ["Size", fmt.bytes(d.bytes)],
          ["Footage", d.footage_summary], ...d.faults.map(text => [/^\S+ lost: /.test(text) ? "Camera lost" : "Note", text])]
        .map(([k, v]) => el("div", {}, el("span", {class: "label"}, k), " ", el("b", {}, String(v)))));
    const copies = Object.fromEntries(d.desktop_copy.map(c => [c.camera, c]));
    document.querySelector("#s-cameras tbody").replaceChildren(...m.cameras.map(c => el("tr", {"data-camera": c.name},
      el("td", {}, c.name), el("td", {}, String(c.frames)), el("td", {}, String(c.expected_frames)),
      el("td", {}, String(c.dropped)),
      el("td", {}, Object.entries(c.drops || {}).filter(([, n]) => n).map(([k, n]) => `${k}: ${n}`).join(", ") || "none"),
      el("td", {class: copies[c.name]?.ok ? "ok" : "bad"}, copies[c.name]?.message || "–"),
      el("td", {}, d.on_cameras[c.name] == null ? "unknown" : (d.on_cameras[c.name] ? "yes" : "deleted")))));
    document.querySelector("#s-transfer tbody").replaceChildren(...m.cameras.map(c => {
      const t = (d.transfer || {})[c.name] || {};
      const video = (t.files || {})[`${c.name}.h264`] || {};
      const gap = video.gap_fill;
      const safe = (d.footage.cameras[c.name] || {}).safe;
      return el("tr", {"data-camera": c.name, class: safe ? "" : "bad"}, el("td", {}, c.name),
        el("td", {}, safe ? "yes" : "NO"),
        el("td", {}, t.reconciled ? `${t.reconciled.frames_from_stream} / ${t.reconciled.frames_from_pi} (camera lost: ` +
          `${t.reconciled.rows_without_bytes} rows without bytes and ${t.reconciled.pi_bytes_cut} bytes without a row cut)` :
          gap ? `${gap.frames_from_stream} / ${gap.frames_from_pi}` : (video.source ? `all from ${video.source}` : "–")),
        el("td", {}, ((d.footage.cameras[c.name] || {}).problems || []).join("; ") || t.error || ""));
    }));
    const clockText = s => !s ? "not recorded" : `${s.state} · ${s.source}${s.port_state ? " " + s.port_state : ""}` +
      `${s.offset_ns != null ? " " + fmt.us(s.offset_ns) : ""}`;
    const clocks = m.clock_reports || {};
    document.querySelector("#s-clocks tbody").replaceChildren(...m.cameras.map(c => {
      const r = clocks[c.name] || {};
      return el("tr", {"data-camera": c.name, class: [r.clock_sync, r.clock_sync_at_stop].some(s => s && s.state === "unsynchronized") ? "bad" : ""},
        el("td", {}, c.name),
        el("td", {title: (r.clock_sync || {}).detail || ""}, clockText(r.clock_sync)),
        el("td", {title: (r.clock_sync_at_stop || {}).detail || ""}, clockText(r.clock_sync_at_stop)));
    }));
    document.querySelector("#s-files tbody").replaceChildren(...d.files.map(f =>
      el("tr", {}, el("td", {}, f.path), el("td", {}, fmt.bytes(f.bytes)))));
    document.getElementById("s-manifest").textContent = JSON.stringify(m, null, 2);
  }
  async function footageJob(url, label) {
    const out = document.getElementById("footage-result");
    out.textContent = `${label}…`;
    try {
      const {job_id} = await api("POST", url, {});
      const job = await SyncRig.waitJob(job_id);
      out.textContent = job.state === "done" ? `${label}: done` : `${label}: ${job.error}`;
      load();
    } catch (e) { out.textContent = e.message; }
  }
  document.getElementById("pull-btn").addEventListener("click", () =>
    footageJob(`/api/sessions/${encodeURIComponent(id)}/pull`, "Pull"));
  document.getElementById("transcode-btn").addEventListener("click", () =>
    footageJob(`/api/sessions/${encodeURIComponent(id)}/transcode`, "H.265 archive"));
  document.getElementById("delete-form").addEventListener("submit", async ev => {
    ev.preventDefault();
    const out = document.getElementById("delete-result");
    out.hidden = false;
    try {
      const {job_id} = await api("POST", `/api/sessions/${encodeURIComponent(id)}/delete-camera-copies`,
        {confirm: document.getElementById("delete-confirm").value});
      const job = await SyncRig.waitJob(job_id);
      out.className = job.state === "done" ? "ok" : "error";
      out.textContent = job.state === "done" ? "Camera copies deleted." : job.error;
      load();
    } catch (e) { out.className = "error"; out.textContent = e.message; }
  });
  load().catch(e => SyncRig.banner(e.message));
})();
