"use strict";
(() => {
  const {api, el} = SyncRig;
  const select = document.getElementById("sync-session");
  const errorBox = document.getElementById("sync-error");
  const fmt = v => (v == null ? "–" : Number(v).toFixed(1));
  function showError(text) { errorBox.textContent = text || ""; errorBox.hidden = !text; }

  async function showReport() {
    const sid = select.value;
    const box = document.getElementById("sync-result");
    if (!sid) { box.hidden = true; return; }
    let r;
    try { r = await api("GET", `/api/sessions/${encodeURIComponent(sid)}/sync/report`); }
    catch (e) { box.hidden = true; return; }
    box.hidden = false;
    const v = document.getElementById("sync-verdict");
    v.textContent = r.verdict; v.className = `badge verdict-${r.verdict}`;
    const m = r.matching || {};
    document.getElementById("sync-summary").textContent =
      `${m.rows} instants (${m.complete_rows} with every camera), ${m.mode} match, tolerance ${(m.tolerance_ns / 1000).toFixed(0)} µs` +
      (r.relative_time_only ? " — relative time only (imported recording): no quality verdict possible" : "");
    document.getElementById("sync-reasons").replaceChildren(...(r.verdict_reasons || []).map(t => el("li", {}, t)));
    const outs = (r.outputs && r.outputs.cameras) || {};
    document.querySelector("#sync-cameras tbody").replaceChildren(...Object.entries(r.cameras).map(([name, c]) => {
      const o = outs[name];
      return el("tr", {"data-camera": name}, el("td", {}, name), el("td", {}, String(c.frames)),
        el("td", {}, String(c.dropped)), el("td", {}, String(c.drop_events ?? "")), el("td", {}, String(c.unmatched_frames)),
        el("td", {}, `${fmt(c.residual_us.mean)} / ${fmt(c.residual_us.p99)} / ${fmt(c.residual_us.max)}`),
        el("td", {}, o ? `${o.frames} frames: ${o.copied} copied, ${o.reencoded} re-encoded, ${o.filled} filled` : "–"));
    }));
    document.getElementById("sync-flags").replaceChildren(...(r.flags || []).map(t => el("li", {}, t)));
    document.getElementById("sync-thresholds").textContent = JSON.stringify(r.thresholds, null, 2);
    const stamp = Date.now();
    document.getElementById("plot-offsets").src = `/api/sessions/${encodeURIComponent(sid)}/sync/plots/offsets.svg?t=${stamp}`;
    document.getElementById("plot-drops").src = `/api/sessions/${encodeURIComponent(sid)}/sync/plots/drops.svg?t=${stamp}`;
    const vr = document.getElementById("verify-result");
    if (r.verify && r.verify.outputs) {
      vr.hidden = false;
      document.querySelector("#verify-table tbody").replaceChildren(...Object.entries(r.verify.outputs).map(([name, o]) => {
        const off = o.cross_camera_offset_us || {};
        const bad = Object.values(o.cameras || {}).reduce((n, c) => n + (c.disagreeing_frames || 0), 0);
        return el("tr", {class: o.ok ? "" : "bad", "data-output": name}, el("td", {}, name), el("td", {}, String(o.rows_compared ?? "")),
          el("td", {}, `${fmt(off.p50)} / ${fmt(off.p99)} / ${fmt(off.max)}`), el("td", {}, String(bad)), el("td", {}, o.ok ? "yes" : "NO"));
      }));
    } else { vr.hidden = true; }
  }

  async function runJob(url, body) {
    showError("");
    try {
      const {job_id} = await api("POST", url, body);
      const job = await SyncRig.waitJob(job_id);
      if (job.state !== "done") showError(job.error || job.state);
      await showReport();
    } catch (e) {
      showError(e.message);
      document.getElementById("sync-tolerance").classList.toggle("invalid", e.field === "tolerance_us");
    }
  }

  document.getElementById("sync-form").addEventListener("submit", ev => {
    ev.preventDefault();
    const tol = document.getElementById("sync-tolerance").value;
    runJob(`/api/sessions/${encodeURIComponent(select.value)}/sync`, {
      fill: document.getElementById("sync-fill").value,
      outputs: document.getElementById("sync-outputs").checked,
      tolerance_us: tol === "" ? null : Number(tol),
    });
  });
  document.getElementById("verify-run").addEventListener("click", () =>
    runJob(`/api/sessions/${encodeURIComponent(select.value)}/verify`, {}));
  select.addEventListener("change", showReport);
  pickSession(select).then(showReport).catch(e => showError(e.message));
})();
