"use strict";
(() => {
  const {api, el} = SyncRig;
  async function load() {
    const {cameras} = await api("GET", "/api/preview");
    const box = document.getElementById("previews");
    box.replaceChildren(...cameras.map(c => {
      const tile = el("figure", {class: "preview", "data-camera": c.camera});
      if (!c.online) tile.append(el("div", {class: "nopreview"}, "camera offline"));
      else if (!c.available) tile.append(el("div", {class: "nopreview"}, c.reason || "preview not available"));
      else {
        const img = el("img", {alt: `live preview of ${c.camera}`, src: c.stream});
        img.addEventListener("error", () => { tile.classList.add("failed"); });
        tile.append(img);
      }
      const reload = el("button", {type: "button"}, "reload");
      reload.addEventListener("click", load);
      tile.append(el("figcaption", {}, `${c.camera}${c.recording ? " · recording" : ""} `, reload));
      return tile;
    }));
  }
  document.getElementById("pv-reload").addEventListener("click", load);
  load().catch(e => SyncRig.banner(e.message));
})();
