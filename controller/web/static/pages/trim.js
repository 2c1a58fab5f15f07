"use strict";
(() => {
  const {api, el} = SyncRig;
  const select = document.getElementById("trim-session");
  const slider = document.getElementById("trim-slider");
  const rowInput = document.getElementById("trim-row");
  const errorBox = document.getElementById("trim-error");
  let rows = 0, pending = null;
  function showError(text) { errorBox.textContent = text || ""; errorBox.hidden = !text; }
  const base = () => `/api/sessions/${encodeURIComponent(select.value)}`;

  async function show(row) {
    row = Math.max(0, Math.min(rows - 1, row));
    slider.value = row; rowInput.value = row;
    pending = row;
    let d;
    try { d = await api("GET", `${base()}/rows/${row}`); } catch (e) { showError(e.message); return; }
    if (pending !== row) return;  // a newer position was asked for meanwhile
    showError("");
    const t = (d.instant_ns / 1e9).toFixed(4);
    document.getElementById("trim-rowinfo").textContent =
      `row ${row} of ${d.rows - 1} · ${t} s after T0 · ${d.complete ? "every camera has a frame" : "some cameras have no frame here"}`;
    document.getElementById("trim-frames").replaceChildren(...Object.entries(d.frames).map(([cam, f]) => {
      const fig = el("figure", {class: "preview", "data-camera": cam});
      fig.append(f == null ? el("div", {class: "nopreview"}, "no frame at this instant (dropped)")
                           : el("img", {src: `${base()}/rows/${row}/${encodeURIComponent(cam)}.jpg`, alt: `${cam} at row ${row}`}));
      fig.append(el("figcaption", {}, `${cam}${f == null ? "" : " · frame " + f}`));
      return fig;
    }));
  }

  async function loadSession() {
    showError("");
    if (!select.value) { showError("No sessions yet."); return; }
    try {
      const r = await api("GET", `${base()}/sync/report`);
      rows = r.matching.rows;
    } catch (e) { rows = 0; showError("This session has not been synced yet: run Sync first."); }
    slider.max = Math.max(0, rows - 1);
    document.getElementById("trim-start").value = 0;
    document.getElementById("trim-end").value = Math.max(0, rows - 1);
    if (rows) await show(0);
    loadTrims();
  }

  async function loadTrims() {
    try {
      const {trims} = await api("GET", `${base()}/trims`);
      document.querySelector("#trims tbody").replaceChildren(...trims.map(t => el("tr", {"data-trim": t.name},
        el("td", {}, t.name), el("td", {}, `${t.start_frame}–${t.end_frame}`), el("td", {}, t.fill || ""),
        el("td", {}, (t.flags || []).join("; ")))));
    } catch (e) { /* not synced yet */ }
  }

  slider.addEventListener("input", () => show(Number(slider.value)));
  rowInput.addEventListener("change", () => show(Number(rowInput.value)));
  document.querySelectorAll(".scrub [data-step]").forEach(b =>
    b.addEventListener("click", () => show(Number(slider.value) + Number(b.dataset.step))));
  document.getElementById("set-start").addEventListener("click", () => { document.getElementById("trim-start").value = slider.value; });
  document.getElementById("set-end").addEventListener("click", () => { document.getElementById("trim-end").value = slider.value; });
  document.getElementById("trim-form").addEventListener("submit", async ev => {
    ev.preventDefault();
    showError("");
    try {
      const {job_id} = await api("POST", `${base()}/trim`, {
        start: Number(document.getElementById("trim-start").value),
        end: Number(document.getElementById("trim-end").value),
        fill: document.getElementById("trim-fill").value,
      });
      const job = await SyncRig.waitJob(job_id);
      if (job.state !== "done") showError(job.error || job.state);
      loadTrims();
    } catch (e) { showError(e.message); }
  });
  select.addEventListener("change", loadSession);
  pickSession(select).then(loadSession).catch(e => showError(e.message));
})();
