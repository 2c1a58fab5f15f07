"use strict";
(() => {
  const {api, on, el} = SyncRig;
  function render(r) {
    if (!r || !r.checks) return;
    const v = document.getElementById("pf-verdict");
    v.hidden = false;
    v.className = `verdict ${r.ok ? "ok" : "bad"}`;
    v.textContent = r.ok ? "All checks passed: ready to record." : `Recording would be refused: ${r.reason}`;
    document.querySelector("#pf-table tbody").replaceChildren(...r.checks.map(c => el("tr",
      {class: c.ok ? "ok" : (c.blocking ? "bad" : "warn"), "data-check": `${c.camera}:${c.check}`},
      el("td", {}, c.camera), el("td", {}, c.check),
      el("td", {}, c.ok ? "pass" : (c.blocking ? "FAIL" : "warning")), el("td", {}, c.message))));
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
