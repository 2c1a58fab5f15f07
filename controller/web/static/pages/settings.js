"use strict";
(() => {
  const {api, el} = SyncRig;
  const form = document.getElementById("settings-form");
  const camBody = document.querySelector("#cam-table tbody");
  const scalar = ["width", "height", "fps", "bitrate", "keyframe_interval_s", "sessions_root", "pi_data_dir", "pi_install_dir"];
  const numeric = new Set(["width", "height", "fps", "bitrate", "keyframe_interval_s"]);
  const ttlBody = document.querySelector("#ttl-table tbody");
  const TTL_ROLES = ["start", "strobe", "barcode"];

  // A number typed in a field; what is not one goes to the server as typed, which names it.
  function numberOf(text) {
    const v = text.trim();
    return v === "" ? null : (Number.isFinite(Number(v)) ? Number(v) : v);
  }

  function ttlInputRow(i = {}) {
    const remove = el("button", {type: "button", class: "ttl-remove-input"}, "remove");
    const row = el("div", {class: "ttl-input"},
      el("input", {name: "ttl-in-name", "data-part": "name", value: i.name ?? "", size: 8, placeholder: "name", title: "input name"}),
      el("input", {type: "number", step: 1, name: "ttl-in-line", "data-part": "line", value: i.line ?? "", placeholder: "line", title: "GPIO line"}),
      el("label", {class: "check"}, el("input", {type: "checkbox", name: "ttl-in-record", "data-part": "record", checked: !!i.record}), " gates recording"),
      remove);
    row._extra = i;  // edges, debounce_us: kept as the file has them
    remove.addEventListener("click", () => row.remove());
    return row;
  }

  // One row of the TTL table per camera row; the camera's name is shown as typed above.
  function ttlRow(c) {
    const ttl = c.ttl || {};
    const outputs = ttl.outputs || {};
    const nameCell = el("td", {class: "ttl-camera"}, c.name);
    const inputs = el("div", {class: "ttl-inputs"}, ...(ttl.inputs || []).map(ttlInputRow));
    const add = el("button", {type: "button", class: "ttl-add-input"}, "add input");
    add.addEventListener("click", () => inputs.append(ttlInputRow()));
    const row = el("tr", {},
      nameCell,
      ...TTL_ROLES.map(role => el("td", {}, el("input", {type: "number", step: 1, name: `ttl-${role}`,
        "data-ttl-field": `outputs.${role}`, value: outputs[role] ?? "", size: 4, title: `${role} output line`}))),
      el("td", {}, el("input", {type: "number", step: "any", name: "ttl-strobe_width_us", "data-ttl-field": "strobe_width_us",
        value: ttl.strobe_width_us ?? "", placeholder: "5000", size: 7})),
      el("td", {}, inputs, add));
    row._nameCell = nameCell;
    return row;
  }

  // The camera's `ttl` as the rig file keeps it: {} when no line is set; fields the page does not
  // edit (chip, an input's edges and debounce) kept.
  function ttlOf(row, extra) {
    const {outputs: _o, inputs: _i, strobe_width_us: _w, ...rest} = extra || {};
    const outputs = {};
    for (const role of TTL_ROLES) {
      const v = numberOf(row.querySelector(`[name=ttl-${role}]`).value);
      if (v !== null) outputs[role] = v;
    }
    const inputs = [...row.querySelectorAll(".ttl-input")].map(r => {
      const entry = {...r._extra, line: numberOf(r.querySelector("[data-part=line]").value)};
      if (r.querySelector("[data-part=record]").checked) entry.record = true;
      else if ("record" in r._extra) entry.record = false;
      const name = r.querySelector("[data-part=name]").value.trim();
      if (name) entry.name = name; else delete entry.name;  // the agent names it in<line>
      return entry;
    });
    if (!Object.keys(outputs).length && !inputs.length) return {};
    const ttl = {...rest};
    if (Object.keys(outputs).length) ttl.outputs = outputs;
    if (inputs.length) ttl.inputs = inputs;
    const width = numberOf(row.querySelector("[name=ttl-strobe_width_us]").value);
    if (width !== null) ttl.strobe_width_us = width;
    return ttl;
  }

  // A TTL error's field (`cameras[1].ttl.inputs[0].line`): the input that holds it.
  function ttlField(index, path) {
    const row = ttlBody.rows[index];
    if (!row || !path) return row || null;
    const input = /^inputs\[(\d+)\](?:\.(\w+))?/.exec(path);
    if (input) {
      const entry = row.querySelectorAll(".ttl-input")[Number(input[1])];
      return entry ? (entry.querySelector(`[data-part=${input[2] || "line"}]`) || entry) : row;
    }
    return row.querySelector(`[data-ttl-field="${path}"]`) || row;
  }

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
    row._ttl = ttlRow(c);
    const name = row.querySelector("[name=name]");
    name.addEventListener("input", () => { row._ttl._nameCell.textContent = name.value; });
    remove.addEventListener("click", () => { row.remove(); row._ttl.remove(); });
    return row;
  }

  function addCameras(rows) {
    camBody.append(...rows);
    ttlBody.append(...rows.map(r => r._ttl));
  }

  async function load() {
    const {config, path} = await api("GET", "/api/settings");
    document.getElementById("cfg-path").textContent = path;
    camBody.replaceChildren(); ttlBody.replaceChildren();
    addCameras(config.cameras.map(camRow));
    for (const k of scalar) form.elements[k].value = config[k];
  }

  // The words the page shows for a field (its label), not the config file's name for it.
  function labelOf(name) {
    if (name === "cameras") return "cameras";
    if (name === "ttl") return "TTL lines";
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
      role: r.querySelector("[name=role]").value, ssh_user: r.querySelector("[name=ssh_user]").value.trim(),
      ttl: ttlOf(r._ttl, r._extra.ttl)}))};
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
        const sim = (r.not_simulated || []).length ? ` ${names(r.not_simulated)} saved for a real rig; ` +
          "this simulated rig's TTL comes from syncrig demo --ttl-out and did not change." : "";
        result.textContent = `Saved. ${now}${deploy}${sim}`;
      }
    } catch (e) {
      result.textContent = "";
      const ttl = /^cameras\[(\d+)\]\.ttl(?:\.(.+))?$/.exec(e.field || "");
      const field = ttl ? "ttl" : (e.field || "").replace(/\[\d+\].*$/, "");
      const slot = form.querySelector(`[data-error-for="${field}"]`);
      if (ttl) {
        slot.textContent = e.message;
        const input = ttlField(Number(ttl[1]), ttl[2]);
        if (input) { input.classList.add("invalid"); if (input.focus) input.focus(); }
      } else if (slot) {
        slot.textContent = e.message;
        if (form.elements[field] && form.elements[field].classList) form.elements[field].classList.add("invalid");
      }
      const box = document.getElementById("settings-error");
      box.textContent = e.message; box.hidden = false;
    }
  });
  document.getElementById("add-camera").addEventListener("click", () => addCameras([camRow()]));

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
