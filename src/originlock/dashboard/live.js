// originlock dashboard: live rates from /dashboard/live.json (the edge's own counters), every 2 s.
// Plain DOM, no build step. Everything inserted from the server goes through textContent.
"use strict";
(function () {
  const PERIOD_MS = 2000;
  let previous = null;

  function sum(obj, keep) {
    let total = 0;
    for (const [key, value] of Object.entries(obj)) if (keep(key)) total += value;
    return total;
  }

  function show(id, perSecond) {
    const el = document.getElementById(id);
    if (el) el.textContent = perSecond.toFixed(perSecond < 10 ? 1 : 0);
  }

  function cell(row, text, tag) {
    const td = document.createElement(tag || "td");
    td.textContent = text;
    row.appendChild(td);
    return td;
  }

  function showEvents(events) {
    const body = document.querySelector("#waf-events tbody");
    if (!body || !events.length) return;
    body.replaceChildren();
    for (const e of events.slice(0, 50)) {
      const row = document.createElement("tr");
      cell(row, new Date(e.at * 1000).toISOString().slice(0, 16).replace("T", " ") + " UTC");
      cell(row, e.zone);
      cell(row, e.host);
      cell(row, e.method + " " + e.path);
      cell(row, e.action);
      cell(row, e.rule_id + " (" + e.phase + ")");
      cell(row, e.ray_id);
      body.appendChild(row);
    }
  }

  function showTotals(requests, waf) {
    const totals = document.querySelector("#request-totals tbody");
    if (totals && requests.length) {
      const byZone = new Map();
      for (const r of requests) {
        if (!byZone.has(r.zone)) byZone.set(r.zone, []);
        byZone.get(r.zone).push(r);
      }
      totals.replaceChildren();
      for (const [zone, rows] of byZone) {
        const row = document.createElement("tr");
        cell(row, zone, "th").setAttribute("scope", "row");
        cell(row, String(rows.reduce((n, r) => n + r.count, 0)));
        cell(row, rows.map((r) => r.status + ": " + r.count).join(", "));
        totals.appendChild(row);
      }
    }
    const wafTotals = document.querySelector("#waf-totals tbody");
    if (wafTotals && waf.length) {
      wafTotals.replaceChildren();
      for (const w of waf) {
        const row = document.createElement("tr");
        cell(row, w.zone, "th").setAttribute("scope", "row");
        cell(row, w.action);
        cell(row, String(w.count));
        wafTotals.appendChild(row);
      }
    }
  }

  async function tick() {
    try {
      const response = await fetch("/dashboard/live.json", { credentials: "same-origin", cache: "no-store" });
      if (response.status === 401) { window.location.assign("/dashboard"); return; }
      if (!response.ok) return;
      const now = await response.json();
      if (previous) {
        const seconds = Math.max(now.at - previous.at, 0.001);
        const delta = (pick) => Math.max(pick(now) - pick(previous), 0) / seconds;
        show("rate-requests", delta((s) => sum(s.statuses, () => true)));
        show("rate-4xx", delta((s) => sum(s.statuses, (k) => k.startsWith("4"))));
        show("rate-5xx", delta((s) => sum(s.statuses, (k) => k.startsWith("5"))));
        show("rate-52x", delta((s) => sum(s.statuses, (k) => k.startsWith("52"))));
        show("rate-waf", delta((s) => sum(s.waf, () => true)));
      }
      showEvents(now.events);
      showTotals(now.requests, now.waf_by_zone);
      previous = now;
    } catch (err) {
      const note = document.getElementById("rate-note");
      if (note) note.textContent = "Live rates paused: the control plane did not answer.";
    }
  }

  tick();
  setInterval(tick, PERIOD_MS);
})();
