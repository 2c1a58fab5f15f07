"use strict";
(() => {
  const {api, el} = SyncRig;
  const select = document.getElementById("trim-session");
  const slider = document.getElementById("trim-slider");
  const rowInput = document.getElementById("trim-row");
  const errorBox = document.getElementById("trim-error");
  let rows = 0, pending = null;
  const startInput = document.getElementById("trim-start");
  const endInput = document.getElementById("trim-end");
  function showError(text, field) {
    errorBox.textContent = text || ""; errorBox.hidden = !text;
    for (const input of [startInput, endInput]) input.classList.toggle("invalid", !!field && input.name === field);
  }
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
    if (!select.value) { showError("No session is synced yet: sync one on the Sync tab, then trim it here."); return; }
    try {
      const r = await api("GET", `${base()}/sync/report`);
      rows = r.matching.rows;
    } catch (e) { rows = 0; showError("This session has not been synced yet: run Sync first."); }
    slider.max = Math.max(0, rows - 1);
    // Start and end stay empty until set: a trim is always a range someone chose.
    startInput.value = ""; endInput.value = "";
    startInput.placeholder = endInput.placeholder = rows ? `0 … ${rows - 1}` : "required";
    if (rows) await show(0);
    loadTrims();
  }

  async function loadTrims() {
    try {
      const {trims} = await api("GET", `${base()}/trims`);
      document.querySelector("#trims tbody").replaceChildren(...trims.map(t => el("tr", {"data-trim": t.name},
        el("td", {}, t.name), el("td", {}, `${t.start_frame}–${t.end_frame}`), el("td", {}, t.fill || ""),
        el("td", {}, (t.flags || []).join("; ")), el("td", {}, deleteButton(t.name)))));
    } catch (e) { /* not synced yet */ }
  }

  function deleteButton(name) {
    const b = el("button", {type: "button", class: "danger", "data-delete-trim": name}, "Delete…");
    b.addEventListener("click", async () => {
      if (!window.confirm(`Delete trim ${name} (its videos and tables)? The recording is not touched.`)) return;
      try { await api("DELETE", `${base()}/trims/${encodeURIComponent(name)}`, {confirm: name}); }
      catch (e) { showError(e.message); }
      loadTrims();
    });
    return b;
  }

  function rowValue(input) { return input.value.trim() === "" ? null : Number(input.value); }

  async function runTrim(overwrite) {
    const body = {start: rowValue(startInput), end: rowValue(endInput),
                  fill: document.getElementById("trim-fill").value, overwrite};
    try {
      const {job_id} = await api("POST", `${base()}/trim`, body);
      const job = await SyncRig.waitJob(job_id);
      if (job.state !== "done") showError(job.error || job.state);
      loadTrims();
    } catch (e) {
      if (e.field === "overwrite" && !overwrite) {
        if (window.confirm(`${e.message}\nThe existing trim's files are replaced.`)) return runTrim(true);
        showError("Not trimmed: the existing trim was kept.");
        return;
      }
      showError(e.message, e.field);
    }
  }

  slider.addEventListener("input", () => show(Number(slider.value)));
  rowInput.addEventListener("change", () => show(Number(rowInput.value)));
  document.querySelectorAll(".scrub [data-step]").forEach(b =>
    b.addEventListener("click", () => show(Number(slider.value) + Number(b.dataset.step))));
  document.getElementById("set-start").addEventListener("click", () => { document.getElementById("trim-start").value = slider.value; });
  document.getElementById("set-end").addEventListener("click", () => { document.getElementById("trim-end").value = slider.value; });
  document.getElementById("trim-form").addEventListener("submit", ev => {
    ev.preventDefault();
    showError("");
    runTrim(false);
  });
  select.addEventListener("change", loadSession);
  pickSession(select, {onlySynced: true}).then(loadSession).catch(e => showError(e.message));
})();
