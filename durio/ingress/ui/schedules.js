// The Schedules tab: every schedule, and one schedule's next fires, latest fires (with their invocations) and skips.
// Uses app.js's helpers (api, escapeHtml, time, setNav, scheduleRefresh, statusBadge, view); loaded before it.
"use strict";

async function scheduleAction(id, action) {
  const response = await fetch(`/schedules/${encodeURIComponent(id)}/${action}`, { method: "PATCH" });
  const body = await response.json();
  if (!response.ok) throw new Error(body.message || `${response.status}`);
  return body;
}

function fireStatus(fire) {
  if (!fire) return `<span class="muted">–</span>`;
  const failed = fire.outcome === "failure";
  const shown = failed ? "failed" : fire.status;
  return `<span class="status status-${escapeHtml(failed ? "failed" : fire.status)}" data-status="${escapeHtml(shown)}">${escapeHtml(shown)}</span>`;
}

function invocationLink(id) {
  return `<a class="mono" href="#/invocations/${encodeURIComponent(id)}">${escapeHtml(id)}</a>`;
}

function actionButtons(schedule) {
  const toggle = schedule.paused
    ? `<button data-action="resume">Resume</button>`
    : `<button data-action="pause">Pause</button>`;
  return `${toggle} <button data-action="trigger">Trigger now</button>`;
}

function wireActions(container, id, reload) {
  container.querySelectorAll("button[data-action]").forEach((button) => {
    button.onclick = async () => {
      button.disabled = true;
      try {
        const result = await scheduleAction(id, button.dataset.action);
        await reload();  // before the note: a page's reload draws its note afresh
        const note = document.getElementById("schedule-note");
        if (note) note.textContent = button.dataset.action === "trigger"
          ? `triggered: ${result.outcome}${result.invocation_id ? " " + result.invocation_id : ""}` : `${id}: ${button.dataset.action}d`;
      } catch (error) {
        const note = document.getElementById("schedule-note");
        if (note) note.textContent = `failed: ${error.message}`;
      } finally {
        button.disabled = false;
      }
    };
  });
}

async function renderSchedules(id) {
  setNav("schedules");
  if (id) return renderSchedule(id);
  view.innerHTML = `<h1>Schedules</h1><div class="muted" id="schedule-note"></div><div id="schedule-list"></div>`;
  const load = async () => {
    const data = await api("/schedules");
    const list = document.getElementById("schedule-list");
    list.innerHTML = data.schedules.length === 0 ? `<div class="empty">No schedules. Create one with POST /schedules or @scheduled in code.</div>`
      : `<table id="schedules"><thead><tr><th>Schedule</th><th>When</th><th>Target</th><th>State</th><th>Next fire</th><th>Last fire</th><th>Fired / skipped</th><th></th></tr></thead><tbody>
        ${data.schedules.map((s) => `<tr data-id="${escapeHtml(s.id)}">
          <td><a href="#/schedules/${encodeURIComponent(s.id)}">${escapeHtml(s.id)}</a>${s.source === "code" ? ` <span class="badge code">code</span>` : ""}</td>
          <td class="mono">${escapeHtml(s.cron || "every " + s.every)} <span class="muted">${escapeHtml(s.timezone)}</span></td>
          <td>${escapeHtml(s.target)}</td>
          <td class="state">${s.paused ? `<span class="status status-paused">paused</span>` : `<span class="status status-running">active</span>`}</td>
          <td>${time(s.next_fire_at)}</td>
          <td class="last-fire">${s.last_fire ? `${fireStatus(s.last_fire)} ${invocationLink(s.last_fire.invocation_id)}` : "–"}</td>
          <td>${s.fired} / ${s.skipped}</td>
          <td class="actions">${actionButtons(s)}</td></tr>`).join("")}</tbody></table>`;
    for (const row of list.querySelectorAll("tr[data-id]")) wireActions(row, row.dataset.id, load);
  };
  await load();
  scheduleRefresh(load);
}

async function renderSchedule(id) {
  const load = async () => {
    const s = await api(`/schedules/${encodeURIComponent(id)}`);
    view.innerHTML = `
      <h1>${escapeHtml(s.id)} ${s.paused ? `<span class="status status-paused">paused</span>` : ""}</h1>
      <div class="card"><dl class="summary" id="schedule-summary">
        <dt>When</dt><dd class="mono">${escapeHtml(s.cron || "every " + s.every)} <span class="muted">in ${escapeHtml(s.timezone)}</span></dd>
        <dt>Target</dt><dd>${escapeHtml(s.target)}</dd>
        <dt>Input</dt><dd class="mono">${s.input === null ? `<span class="muted">the tick's time</span>` : escapeHtml(JSON.stringify(s.input))}</dd>
        <dt>Overlap</dt><dd>${escapeHtml(s.overlap)}</dd>
        <dt>Catch-up window</dt><dd>${escapeHtml(s.catchup_window)}</dd>
        ${s.jitter !== "0s" ? `<dt>Jitter</dt><dd>${escapeHtml(s.jitter)}</dd>` : ""}
        <dt>Declared</dt><dd>${s.source === "code" ? "in code (@scheduled)" : "through the admin API"}</dd>
        <dt>Fired</dt><dd id="fired-count">${s.fired}</dd>
        <dt>Skipped</dt><dd id="skipped-count">${s.skipped}</dd>
        ${s.buffered ? `<dt>Buffered</dt><dd>${escapeHtml(s.buffered.tick)}</dd>` : ""}
      </dl>
      <div class="actions" id="schedule-actions">${actionButtons(s)} <span class="muted" id="schedule-note"></span></div></div>
      <h2>Next fires</h2>
      <ol id="next-fires" class="mono">${s.next_fires.map((t) => `<li>${escapeHtml(t)}</li>`).join("") || `<span class="muted">none (paused or ended)</span>`}</ol>
      <h2>Last fires <span class="muted">(${s.last_fires.length})</span></h2>
      ${s.last_fires.length === 0 ? `<div class="empty">Nothing fired yet.</div>` : `<table id="last-fires"><thead><tr><th>Tick</th><th>By</th><th>Invocation</th><th>Status</th><th>Fired at</th><th>Error</th></tr></thead><tbody>
        ${s.last_fires.map((f) => `<tr data-invocation="${escapeHtml(f.invocation_id)}"><td class="mono">${escapeHtml(f.tick)}</td><td>${escapeHtml(f.by)}</td>
          <td>${invocationLink(f.invocation_id)}</td><td>${fireStatus(f)}</td><td>${time(f.fired_at)}</td>
          <td class="error">${f.failure ? `[${f.failure.code}] ${escapeHtml(f.failure.message)}` : ""}</td></tr>`).join("")}</tbody></table>`}
      <h2>Skipped ticks</h2>
      ${s.last_skips.length === 0 ? `<div class="muted">None.</div>` : `<table id="last-skips"><thead><tr><th>Tick</th><th>Count</th><th>Why</th></tr></thead><tbody>
        ${s.last_skips.map((k) => `<tr><td class="mono">${escapeHtml(k.tick)}${k.until ? ` … ${escapeHtml(k.until)}` : ""}</td><td>${k.count}</td><td>${escapeHtml(k.reason)}</td></tr>`).join("")}</tbody></table>`}`;
    wireActions(document.getElementById("schedule-actions"), s.id, load);
  };
  await load();
  scheduleRefresh(load);
}
