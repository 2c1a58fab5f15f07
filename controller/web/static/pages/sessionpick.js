"use strict";
// Fills a session <select> (newest first), remembers the choice in the URL (?session=...).
async function pickSession(select, {onlySynced = false} = {}) {
  const {sessions} = await SyncRig.api("GET", "/api/sessions");
  const wanted = new URLSearchParams(location.search).get("session");
  const list = sessions.filter(s => !s.error && (!onlySynced || s.synced));
  select.replaceChildren(...list.map(s => SyncRig.el("option", {value: s.id},
    `${s.id}${s.synced ? " · synced" : ""}`)));
  if (wanted && list.some(s => s.id === wanted)) select.value = wanted;
  select.addEventListener("change", () => {
    const url = new URL(location.href); url.searchParams.set("session", select.value); history.replaceState(null, "", url);
  });
  return select.value || null;
}
