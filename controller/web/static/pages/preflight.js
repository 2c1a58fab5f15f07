"use strict";
(() => {
  const {api, on, el, fmt} = SyncRig;
  // A limit in its unit, as the page's words say it ("≤ 1000 µs", "≥ 16.9 GB").
  function limitText(c) {
    if (c.limit == null || typeof c.limit !== "number") return "";
    if (c.unit === "bytes") return `≥ ${fmt.bytes(c.limit)}`;
    return `≤ ${c.limit} ${c.unit || ""}`.trim();
  }
  function render(r) {
    if (!r || !r.checks) return;
    const v = document.getElementById("pf-verdict");
    v.hidden = false;
    v.className = `verdict ${r.ok ? "ok" : "bad"}`;
    const count = outcome => r.checks.filter(c => c.outcome === outcome).length;
    const unknown = count("unknown"), warnings = count("warning");
    const notes = [unknown && `${unknown} not reported (unknown)`, warnings && `${warnings} warning${warnings > 1 ? "s" : ""}`]
      .filter(Boolean).join(", ");
    v.textContent = !r.ok ? `Recording would be refused: ${r.reason}` :
      notes ? `Ready to record: nothing refuses it; ${notes}, see below.` : "All checks passed: ready to record.";
    const words = {pass: "pass", fail: "FAIL", warning: "warning", unknown: "unknown"};
    const rowClass = {pass: "ok", fail: "bad", warning: "warn", unknown: "warn"};
    document.querySelector("#pf-table tbody").replaceChildren(...r.checks.map(c => el("tr",
      {class: rowClass[c.outcome], "data-check": `${c.camera}:${c.check}`, "data-outcome": c.outcome},
      el("td", {}, c.camera), el("td", {}, c.label),
      el("td", {}, words[c.outcome]), el("td", {}, c.message), el("td", {}, limitText(c)))));
  }
  document.getElementById("preflight-form").addEventListener("submit", async ev => {
    ev.preventDefault();
    const seconds = document.getElementById("pf-seconds").value || null;
    try {
      const {job_id} = await api("POST", "/api/preflight", {seconds});
      const job = await SyncRig.waitJob(job_id);
      if (job.state === "failed") SyncRig.banner(`Pre-flight could not run: ${job.error}`);
      else render(job.result);
    } catch (e) { SyncRig.banner(e.message); }
  });
  on("preflight", render);
  api("GET", "/api/preflight").then(render);
})();
