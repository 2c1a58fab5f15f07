"use strict";
(() => {
  const {api, el} = SyncRig;
  const select = document.getElementById("cal-session");
  const errorBox = document.getElementById("cal-error");
  const $ = id => document.getElementById(id);
  const fmt = (v, d = 3) => (v == null ? "–" : Number(v).toFixed(d));
  const base = () => `/api/sessions/${encodeURIComponent(select.value)}/calibration`;
  function showError(text) { errorBox.textContent = text || ""; errorBox.hidden = !text; }

  async function fillBoard() {
    if (!select.value) return;
    try {
      const {board} = await api("GET", `${base()}/board`);
      $("cal-squares-x").value = board.squares_x; $("cal-squares-y").value = board.squares_y;
      $("cal-square-mm").value = board.square_mm; $("cal-marker-mm").value = board.marker_mm;
      $("cal-dictionary").value = board.dictionary; $("cal-legacy").checked = !!board.legacy_pattern;
    } catch (e) { showError(e.message); }
  }

  async function showReport() {
    const box = $("cal-result");
    if (!select.value) { box.hidden = true; return; }
    let r;
    try { r = await api("GET", `${base()}/report`); } catch (e) { box.hidden = true; return; }
    box.hidden = false;
    const mean = $("cal-mean");
    mean.textContent = `mean ${fmt(r.reprojection_px.mean)} px`;
    mean.className = `badge ${r.reprojection_px.mean <= 1 ? "verdict-good" : "warn"}`;
    $("cal-summary").textContent = `${Object.keys(r.cameras).length} cameras, ${r.rows} board poses, ${r.model} model; ` +
      `world = board in row ${r.reference_row} (mm); board ${r.board.squares_x}×${r.board.squares_y}, ` +
      `${r.board.square_mm} mm squares, ${r.board.dictionary}`;
    $("cal-dl-anipose").href = `${base()}/files/calibration.toml`;
    $("cal-dl-pose2sim").href = `${base()}/files/Calib.toml`;
    $("cal-cameras").querySelector("tbody").replaceChildren(...Object.entries(r.cameras).map(([name, c]) => {
      const e = c.reprojection_px;
      return el("tr", {"data-camera": name}, el("td", {}, name),
        el("td", {}, `${fmt(e.mean)} / ${fmt(e.median)} / ${fmt(e.p95)} / ${fmt(e.max)}`),
        el("td", {}, String(c.observations)), el("td", {}, String(c.rows)), el("td", {}, String(c.views_intrinsics)),
        el("td", {}, String(c.outliers_dropped)), el("td", {}, c.focal_px.map(v => fmt(v, 1)).join(" / ")),
        el("td", {}, c.principal_point_px.map(v => fmt(v, 1)).join(", ")),
        el("td", {}, c.centre_mm.map(v => fmt(v, 0)).join(", ")));
    }));
    const ba = r.bundle_adjustment;
    $("cal-ba").textContent = `${ba.observations} corners, ${ba.parameters} parameters, ${ba.iterations} iterations, ` +
      `cost ${fmt(ba.cost_before, 1)} → ${fmt(ba.cost_after, 1)}, RMS ${fmt(ba.rms_px_before)} → ${fmt(ba.rms_px_after)} px, ` +
      `${fmt(ba.seconds, 1)} s, ${ba.outliers_dropped} outliers dropped (> ${fmt(ba.outlier_limit_px, 1)} px)\n` +
      `spanning tree: ${r.spanning_tree.map(e => `${e.from}→${e.to} (${e.shared_rows} rows)`).join(", ")}`;
    const stamp = Date.now();
    $("cal-plot-layout").src = `${base()}/plots/layout.svg?t=${stamp}`;
    $("cal-plot-reprojection").src = `${base()}/plots/reprojection.svg?t=${stamp}`;
    $("cal-coverage").replaceChildren(...Object.keys(r.cameras).map(name => el("figure", {},
      el("img", {src: `${base()}/plots/coverage_${encodeURIComponent(name)}.png?t=${stamp}`, alt: `board coverage of ${name}`, "data-camera": name}),
      el("figcaption", {}, name))));
  }

  function body() {
    const ref = $("cal-reference-row").value;
    return {
      board: {
        squares_x: Number($("cal-squares-x").value), squares_y: Number($("cal-squares-y").value),
        square_mm: Number($("cal-square-mm").value), marker_mm: Number($("cal-marker-mm").value),
        dictionary: $("cal-dictionary").value, legacy_pattern: $("cal-legacy").checked,
      },
      fisheye: $("cal-fisheye").checked,
      reference_row: ref === "" ? null : Number(ref),
      redetect: $("cal-redetect").checked,
    };
  }

  $("cal-form").addEventListener("submit", async ev => {
    ev.preventDefault();
    showError("");
    const button = $("cal-run");
    button.disabled = true;
    try {
      const {job_id} = await api("POST", base(), body());
      const job = await SyncRig.waitJob(job_id);
      if (job.state !== "done") showError(job.error || job.state);
      await showReport();
    } catch (e) { showError(e.message); }
    finally { button.disabled = false; }
  });
  select.addEventListener("change", () => { showError(""); fillBoard(); showReport(); });
  pickSession(select).then(() => Promise.all([fillBoard(), showReport()])).catch(e => showError(e.message));
})();
