"use strict";
(() => {
  const {api, el} = SyncRig;
  const form = document.getElementById("settings-form");
  const camBody = document.querySelector("#cam-table tbody");
  const scalar = ["width", "height", "fps", "bitrate", "keyframe_interval_s", "sessions_root", "pi_data_dir", "pi_install_dir"];
  const numeric = new Set(["width", "height", "fps", "bitrate", "keyframe_interval_s"]);

  function camRow(c = {name: "", host: "", role: "client", ssh_user: "pi"}) {
    const role = el("select", {name: "role"}, el("option", {value: "server"}, "server (cam0)"), el("option", {value: "client"}, "client"));
    role.value = c.role;
    const remove = el("button", {type: "button"}, "remove");
    const row = el("tr", {},
      el("td", {}, el("input", {name: "name", value: c.name, size: 10})),
      el("td", {}, el("input", {name: "host", value: c.host, size: 18})),
      el("td", {}, role),
      el("td", {}, el("input", {name: "ssh_user", value: c.ssh_user, size: 8})),
      el("td", {}, remove));
    row._extra = c;  // fields this page does not edit (e.g. a simulated camera's ports) are kept
    remove.addEventListener("click", () => row.remove());
    return row;
  }

  async function load() {
    const {config, path} = await api("GET", "/api/settings");
    document.getElementById("cfg-path").textContent = path;
    camBody.replaceChildren(...config.cameras.map(camRow));
    for (const k of scalar) form.elements[k].value = config[k];
  }

  // The words the page shows for a field (its label), not the config file's name for it.
  function labelOf(name) {
    if (name === "cameras") return "cameras";
    const input = form.elements[name];
    const label = input && input.closest("label");
    return label ? label.firstChild.textContent.trim().toLowerCase() : name;
  }

  function clearErrors() {
    form.querySelectorAll(".field-error").forEach(e => { e.textContent = ""; });
    form.querySelectorAll(".invalid").forEach(e => e.classList.remove("invalid"));
    document.getElementById("settings-error").hidden = true;
  }

  form.addEventListener("submit", async ev => {
    ev.preventDefault();
    clearErrors();
    const body = {cameras: [...camBody.rows].map(r => ({
      ...r._extra,
      name: r.querySelector("[name=name]").value.trim(), host: r.querySelector("[name=host]").value.trim(),
      role: r.querySelector("[name=role]").value, ssh_user: r.querySelector("[name=ssh_user]").value.trim()}))};
    for (const k of scalar) {
      const v = form.elements[k].value.trim();
      body[k] = numeric.has(k) ? (v === "" ? null : Number(v)) : v;
    }
    const result = document.getElementById("settings-result");
    try {
      const r = await api("POST", "/api/settings", body);
      const names = list => list.map(labelOf).join(", ");
      const now = r.applied.length ? `In effect now, without restarting the rig: ${names(r.applied)}.` : "";
      if (!r.changed.length) result.textContent = "Saved (nothing changed).";
      else if (r.job_id) {
        result.textContent = `Saved. ${now} Restarting the simulated cameras because ${names(r.restart_for)} changed…`;
        const job = await SyncRig.waitJob(r.job_id);
        result.textContent = job.state === "done"
          ? `Saved. ${now} The simulated cameras restarted with the new ${names(r.restart_for)}.`
          : `Saved; restarting the simulated cameras failed: ${job.error}`;
      } else {
        const deploy = r.deploy_for.length ? ` Run Deploy to push ${names(r.deploy_for)} to the Pis.` : "";
        result.textContent = `Saved. ${now}${deploy}`;
      }
    } catch (e) {
      result.textContent = "";
      const field = (e.field || "").replace(/\[\d+\].*$/, "");
      const slot = form.querySelector(`[data-error-for="${field}"]`);
      if (slot) {
        slot.textContent = e.message;
        if (form.elements[field] && form.elements[field].classList) form.elements[field].classList.add("invalid");
      }
      const box = document.getElementById("settings-error");
      box.textContent = e.message; box.hidden = false;
    }
  });
  document.getElementById("add-camera").addEventListener("click", () => camBody.append(camRow()));

  // "Deploy settings": a job running install.sh's code; per-camera progress from its events.
  const deployBtn = document.getElementById("deploy-start");
  if (deployBtn) {
    const state = document.getElementById("deploy-state");
    const table = document.getElementById("deploy-table");
    const keys = document.getElementById("deploy-hostkeys");
    let current = null;

    function renderCameras(cameras) {
      table.hidden = !cameras.length;
      table.tBodies[0].replaceChildren(...cameras.map(c => el("tr", {class: c.ok === false ? "bad" : ""},
        el("td", {}, c.camera), el("td", {}, c.target || ""),
        el("td", {}, c.fraction != null ? el("progress", {max: 1, value: c.fraction}) : (c.ok ? "done" : "")),
        el("td", {}, c.step || ""),
        el("td", {}, c.ok == null ? "" : (c.ok ? `ok (${c.seconds} s)` : `FAILED: ${c.message}`)))));
    }

    function renderHostKeys(pending) {
      keys.hidden = !pending.length;
      keys.querySelector("tbody").replaceChildren(...pending.map(k => {
        const trust = el("button", {type: "button"}, "Trust this key");
        trust.addEventListener("click", async () => {
          try {
            await api("POST", "/api/settings/hostkeys", {camera: k.camera, fingerprint: k.fingerprint});
            trust.replaceWith("remembered");
          } catch (e) { SyncRig.banner(e.message); }
        });
        return el("tr", {}, el("td", {}, k.camera), el("td", {}, `${k.host}:${k.port}`), el("td", {}, k.key_type),
          el("td", {}, el("code", {}, k.fingerprint)), el("td", {}, trust));
      }));
    }

    SyncRig.on("job", j => {
      if (j.id !== current) return;
      state.textContent = ["queued", "running"].includes(j.state) ? (j.message || j.state) : j.state;
      if (j.result && j.result.cameras) renderCameras(j.result.cameras);
    });

    deployBtn.addEventListener("click", async () => {
      if (!window.confirm("Deploy the saved settings to every Pi? Each camera's agent restarts.")) return;
      deployBtn.disabled = true; renderHostKeys([]);
      try {
        const {job_id} = await api("POST", "/api/settings/deploy", {confirm: true});
        current = job_id;
        const job = await SyncRig.waitJob(job_id);
        const r = job.result || {};
        renderCameras(r.cameras || []);
        renderHostKeys(r.needs_confirmation || []);
        state.textContent = job.state !== "done" ? `failed: ${job.error}` :
          (r.needs_confirmation && r.needs_confirmation.length) ? "confirm the new host keys below, then deploy again" :
          (r.ok ? "every camera deployed and answering" : "some cameras failed (see the table)");
      } catch (e) { state.textContent = ""; SyncRig.banner(e.message); }
      deployBtn.disabled = false;
    });
  }
  load().catch(e => SyncRig.banner(e.message));
})();
