"use strict";
// The Schedules tab: add, edit, enable/disable and delete the controller's recording schedules and
// see what each run became (session, skipped by the disk guard, missed, failed).
(() => {
  const {api, el, fmt} = SyncRig;
  const form = document.getElementById("schedule-form");
  const body = document.querySelector("#schedules tbody");
  const history = document.getElementById("schedule-history");
  const saveBtn = document.getElementById("schedule-save");
  const cancelBtn = document.getElementById("schedule-cancel");
  let current = [];

  const when = t => (t == null ? "–" : new Date(t * 1000).toLocaleString());
  function span(seconds) {
    if (seconds % 3600 === 0) return `${seconds / 3600} h`;
    if (seconds % 60 === 0) return `${seconds / 60} min`;
    return `${seconds} s`;
  }
  function localInput(t) {  // Unix seconds → a datetime-local value in this browser's time zone
    if (t == null) return "";
    const d = new Date(t * 1000);
    return new Date(d.getTime() - d.getTimezoneOffset() * 60000).toISOString().slice(0, 19);
  }
  function unitFor(seconds) { return seconds % 3600 === 0 ? 3600 : seconds % 60 === 0 ? 60 : 1; }

  function clearErrors() {
    form.querySelectorAll(".field-error").forEach(e => { e.textContent = ""; });
    form.querySelectorAll(".invalid").forEach(e => e.classList.remove("invalid"));
    document.getElementById("schedule-error").hidden = true;
  }

  function resetForm() {
    form.reset();
    form.elements.id.value = "";
    saveBtn.textContent = "Add schedule";
    cancelBtn.hidden = true;
    clearErrors();
  }

  function edit(s) {
    resetForm();
    const f = form.elements;
    f.id.value = s.id;
    f.name.value = s.name;
    f.every_unit.value = String(unitFor(s.every_s)); f.every.value = s.every_s / unitFor(s.every_s);
    f.duration_unit.value = String(unitFor(s.duration_s)); f.duration.value = s.duration_s / unitFor(s.duration_s);
    f.start_at.value = localInput(s.start_at);
    f.until.value = localInput(s.until);
    f.subject.value = s.subject || ""; f.project.value = s.project || "";
    f.min_free_gb.value = s.min_free_gb;
    f.override_preflight.checked = s.override_preflight; f.enabled.checked = s.enabled;
    saveBtn.textContent = "Save changes";
    cancelBtn.hidden = false;
    form.scrollIntoView();
  }

  function runCounts(runs) {
    const n = {};
    for (const r of runs) n[r.state] = (n[r.state] || 0) + 1;
    return Object.entries(n).map(([k, v]) => `${v} ${k}`).join(", ") || "none yet";
  }

  function render(data) {
    current = data.schedules;
    document.getElementById("free-space").textContent = fmt.bytes(data.free_bytes);
    document.getElementById("no-schedules").hidden = current.length > 0;
    body.replaceChildren(...current.map(s => {
      const editBtn = el("button", {type: "button", "data-action": "edit"}, "Edit");
      const delBtn = el("button", {type: "button", "data-action": "delete"}, "Delete");
      editBtn.addEventListener("click", () => edit(s));
      delBtn.addEventListener("click", async () => {
        if (!confirm(`Delete schedule ${s.name || s.id}? (sessions it recorded stay)`)) return;
        await api("DELETE", `/api/schedules/${s.id}`);
        if (form.elements.id.value === s.id) resetForm();
        refresh();
      });
      const planned = s.planned_runs == null ? "" : ` of ${s.planned_runs}`;
      return el("tr", {"data-schedule": s.id, class: s.enabled ? "" : "warn"},
        el("td", {"data-field": "name"}, s.name || s.id),
        el("td", {"data-field": "every"}, span(s.every_s)),
        el("td", {"data-field": "duration"}, span(s.duration_s)),
        el("td", {"data-field": "next"}, s.enabled ? when(s.next_due) : "disabled"),
        el("td", {"data-field": "until"}, s.until == null ? "until deleted" : when(s.until)),
        el("td", {"data-field": "guard"}, s.min_free_gb ? `${s.min_free_gb} GB` : "off"),
        el("td", {"data-field": "runs"}, runCounts(s.runs) + planned),
        el("td", {}, editBtn, " ", delBtn));
    }));
    history.replaceChildren(...current.filter(s => s.runs.length).map(s =>
      el("details", {"data-history": s.id},
        el("summary", {}, `Runs of ${s.name || s.id}`),
        el("table", {class: "table"},
          el("thead", {}, el("tr", {}, el("th", {}, "Run"), el("th", {}, "Due"), el("th", {}, "State"), el("th", {}, "Session or reason"))),
          el("tbody", {}, ...s.runs.slice(-20).reverse().map(r => el("tr", {class: ["failed", "missed", "skipped", "retrying"].includes(r.state) ? "warn" : ""},
            el("td", {}, String(r.index)), el("td", {}, when(r.due)), el("td", {"data-field": "state"}, r.state),
            el("td", {"data-field": "detail"}, r.session_id
              ? el("a", {href: `/sessions/${encodeURIComponent(r.session_id)}`}, r.session_id)
              : (r.reason || "")))))))));
  }

  async function refresh() {
    try { render(await api("GET", "/api/schedules")); } catch (e) { SyncRig.banner(e.message); }
  }

  form.addEventListener("submit", async ev => {
    ev.preventDefault();
    clearErrors();
    const f = form.elements;
    const num = v => (v.trim() === "" ? null : Number(v));
    const time = v => (v ? new Date(v).getTime() / 1000 : null);
    const every = num(f.every.value), duration = num(f.duration.value);
    const data = {
      name: f.name.value.trim(),
      every_s: every == null ? null : every * Number(f.every_unit.value),
      duration_s: duration == null ? null : duration * Number(f.duration_unit.value),
      start_at: time(f.start_at.value), until: time(f.until.value),
      subject: f.subject.value.trim() || null, project: f.project.value.trim() || null,
      min_free_gb: num(f.min_free_gb.value) || 0,
      override_preflight: f.override_preflight.checked, enabled: f.enabled.checked,
    };
    const id = f.id.value;
    const result = document.getElementById("schedule-result");
    try {
      await api(id ? "PUT" : "POST", id ? `/api/schedules/${id}` : "/api/schedules", data);
      result.textContent = id ? "Saved." : "Added.";
      resetForm();
      refresh();
    } catch (e) {
      result.textContent = "";
      const slot = form.querySelector(`[data-error-for="${e.field}"]`);
      if (slot) slot.textContent = e.message;
      const input = {every_s: f.every, duration_s: f.duration}[e.field] || f[e.field];
      if (input && input.classList) input.classList.add("invalid");
      const box = document.getElementById("schedule-error");
      box.textContent = e.message; box.hidden = false;
    }
  });
  cancelBtn.addEventListener("click", resetForm);
  SyncRig.on("sessions", refresh);
  refresh();
  setInterval(refresh, 2000);
})();
