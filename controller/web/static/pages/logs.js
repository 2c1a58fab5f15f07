"use strict";
(() => {
  const {api, on, el} = SyncRig;
  let current = null;
  const out = document.getElementById("camera-log");
  document.querySelectorAll("#log-cameras button").forEach(b => b.addEventListener("click", async () => {
    current = b.dataset.camera;
    out.textContent = `fetching ${current}…`;
    try { await api("POST", `/api/logs/${encodeURIComponent(current)}`, {}); } catch (e) { out.textContent = e.message; }
  }));
  on("logs", d => {
    if (d.camera !== current) return;
    out.textContent = d.error ? `could not fetch: ${d.error}` : (d.lines.join("\n") || "(empty)");
    out.scrollTop = out.scrollHeight;
  });
  async function showJob(id) {
    const j = await api("GET", `/api/jobs/${encodeURIComponent(id)}`);
    document.getElementById("job-log").textContent =
      `${j.title} — ${j.state}${j.error ? ": " + j.error : ""}\n\n${(j.log || []).join("\n")}` +
      (j.result ? `\n\nresult: ${JSON.stringify(j.result, null, 2)}` : "");
  }
  async function loadJobs() {
    const {jobs} = await api("GET", "/api/jobs");
    document.querySelector("#jobs tbody").replaceChildren(...jobs.map(j => {
      const link = el("a", {href: "#"}, j.title);
      link.addEventListener("click", ev => { ev.preventDefault(); showJob(j.id); });
      return el("tr", {"data-job": j.id, class: j.state}, el("td", {}, link), el("td", {}, j.kind), el("td", {}, j.state),
        el("td", {}, el("progress", {max: 1, value: j.progress})), el("td", {}, j.error || (["queued", "running"].includes(j.state) ? j.message : "")));
    }));
  }
  on("job", loadJobs);
  loadJobs();
})();
