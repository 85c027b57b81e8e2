// AegisFlow console: keeps the approvals page current and the waiting times ticking.
// No inline script anywhere (the Content-Security-Policy forbids it), no HTML built here.
"use strict";

function tickWaited() {
  for (const el of document.querySelectorAll("time.waited")) {
    const since = Date.parse(el.getAttribute("datetime"));
    if (Number.isNaN(since)) continue;
    const s = Math.max(0, Math.round((Date.now() - since) / 1000));
    el.textContent = s < 120 ? `${s} s` : s < 7200 ? `${Math.round(s / 60)} min` : `${Math.round(s / 3600)} h`;
  }
}

function typing() {
  // Never reload under a reviewer who is writing a comment.
  const active = document.activeElement;
  if (active && active.tagName === "TEXTAREA") return true;
  return [...document.querySelectorAll("textarea")].some((t) => t.value.trim() !== "");
}

async function poll(url, version) {
  try {
    const response = await fetch(url, { credentials: "same-origin", cache: "no-store" });
    if (response.status === 401) { window.location.assign("/console/login"); return; }
    const body = await response.json();
    if (body.version !== version && !typing()) { window.location.reload(); return; }
  } catch (e) {
    // The service is restarting or unreachable: try again on the next tick.
  }
  setTimeout(() => poll(url, version), 2000);
}

document.addEventListener("DOMContentLoaded", () => {
  tickWaited();
  setInterval(tickWaited, 1000);
  const url = document.body.dataset.poll;
  if (url) setTimeout(() => poll(url, document.body.dataset.version), 2000);
});
