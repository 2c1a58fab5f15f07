"use strict";
(() => {
  const {api, on, el, fmt} = SyncRig;
  async function load() {
    const {sessions} = await api("GET", "/api/sessions");
    document.querySelector("#sessions tbody").replaceChildren(...sessions.map(s => el("tr", {"data-session": s.id},
      el("td", {}, el("a", {href: `/sessions/${encodeURIComponent(s.id)}`}, s.id)),
      el("td", {}, s.created || ""), el("td", {}, s.subject || ""), el("td", {}, s.project || ""),
      el("td", {}, fmt.secs(s.duration_s)), el("td", {}, (s.cameras || []).join(", ")),
      el("td", {}, Object.values(s.frames || {}).join(" / ")), el("td", {}, String(s.dropped ?? "")),
      el("td", {}, el("a", {href: `/sync?session=${encodeURIComponent(s.id)}`}, s.synced ? "yes" : "sync…")))));
  }
  on("sessions", load);
  load().catch(e => SyncRig.banner(e.message));
})();
