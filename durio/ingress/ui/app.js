// durio's web UI: plain JavaScript, no build step. Every figure comes from the admin API.
"use strict";

const STATUSES = ["pending", "scheduled", "ready", "running", "backing-off", "suspended", "paused", "completed"];
const REFRESH_MS = 2000;
const view = document.getElementById("view");
let refreshTimer = null;

function escapeHtml(value) {
  return String(value ?? "").replace(/[&<>"']/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" })[c]);
}

function json(value) {
  return value === undefined ? "" : JSON.stringify(value);
}

async function api(path) {
  const response = await fetch(path, { headers: { accept: "application/json" } });
  const text = await response.text();
  const body = text ? JSON.parse(text) : null;
  if (!response.ok) throw new Error((body && body.message) || `${response.status}`);
  return body;
}

function statusBadge(view) {
  const failed = view.completion_result === "failure";
  const css = failed ? "status-failed" : `status-${view.status}`;
  const label = failed ? "failed" : view.status;
  return `<span class="status ${css}" data-status="${escapeHtml(view.status)}">${escapeHtml(label)}</span>`;
}

function time(iso) {
  return iso ? new Date(iso).toLocaleString() : "–";
}

function millis(iso) {
  return iso ? new Date(iso).getTime() : null;
}

function parseHash() {
  const [path, query] = location.hash.replace(/^#/, "").split("?");
  return { parts: path.split("/").filter(Boolean).map(decodeURIComponent), params: new URLSearchParams(query || "") };
}

function setNav(section) {
  document.querySelectorAll("nav a").forEach((a) => a.classList.toggle("active", a.dataset.nav === section));
}

function scheduleRefresh(fn) {
  clearTimeout(refreshTimer);
  refreshTimer = setTimeout(async () => {
    try {
      await fn();
      document.getElementById("refresh-status").textContent = `updated ${new Date().toLocaleTimeString()}`;
    } catch (error) {
      document.getElementById("refresh-status").textContent = `refresh failed: ${error.message}`;
    }
    scheduleRefresh(fn);
  }, REFRESH_MS);
}

// ------------------------------------------------------------------ invocations list

async function renderInvocations(params) {
  setNav("invocations");
  const filters = { status: params.get("status") || "", service: params.get("service") || "", key: params.get("key") || "" };
  view.innerHTML = `
    <h1>Invocations</h1>
    <div class="filters">
      <label>Status <select id="f-status"><option value="">all</option>${STATUSES.map((s) => `<option ${s === filters.status ? "selected" : ""}>${s}</option>`).join("")}</select></label>
      <label>Service <select id="f-service"><option value="">all</option></select></label>
      <label>Key <input id="f-key" value="${escapeHtml(filters.key)}" placeholder="any"></label>
      <span class="muted" id="count"></span>
    </div>
    <div id="list"></div>`;
  const services = await api("/services");
  const select = document.getElementById("f-service");
  for (const service of services.services) {
    select.insertAdjacentHTML("beforeend", `<option ${service.name === filters.service ? "selected" : ""}>${escapeHtml(service.name)}</option>`);
  }
  const apply = () => {
    const next = new URLSearchParams();
    for (const [name, id] of [["status", "f-status"], ["service", "f-service"], ["key", "f-key"]]) {
      const value = document.getElementById(id).value;
      if (value) next.set(name, value);
    }
    location.hash = `#/invocations?${next}`;
  };
  document.getElementById("f-status").onchange = apply;
  document.getElementById("f-service").onchange = apply;
  document.getElementById("f-key").onchange = apply;

  const load = async () => {
    const query = new URLSearchParams({ limit: "200" });
    for (const [name, value] of Object.entries(filters)) if (value) query.set(name, value);
    const data = await api(`/invocations?${query}`);
    document.getElementById("count").textContent = `${data.invocations.length} shown`;
    document.getElementById("list").innerHTML = data.invocations.length === 0
      ? `<div class="empty">No invocations match.</div>`
      : `<table id="invocations"><thead><tr><th>Invocation</th><th>Target</th><th>Status</th><th>Retries</th><th>Created</th><th>Last error</th><th>Actions</th></tr></thead><tbody>
        ${data.invocations.map((inv) => `<tr data-id="${escapeHtml(inv.id)}">
          <td><a class="mono" href="#/invocations/${encodeURIComponent(inv.id)}">${escapeHtml(inv.id)}</a></td>
          <td>${escapeHtml(inv.target)}</td><td>${statusBadge(inv)}</td>
          <td>${inv.retry_count}</td><td>${time(inv.created_at)}</td>
          <td class="error">${escapeHtml(inv.last_failure ? inv.last_failure.message : "")}</td>
          <td class="actions">${invocationActionButtons(inv)}</td></tr>`).join("")}
        </tbody></table>`;
    wireInvocationActions(document.getElementById("list"), actionAnswer(), () => load());
  };
  await load();
  scheduleRefresh(load);
}

// ------------------------------------------------------------------ one invocation: the journal as a timeline

function describeStep(entry) {
  const bits = [];
  if (entry.target) bits.push(`→ ${entry.target}`);
  if (entry.key) bits.push(`key ${entry.key}`);
  if (entry.promise) bits.push(`promise ${entry.promise}`);
  if (entry.awakeable_id) bits.push(`awakeable ${entry.awakeable_id}`);
  if (entry.wake_up_at) bits.push(`until ${time(entry.wake_up_at)}`);
  if (entry.invoke_at) bits.push(`scheduled for ${time(entry.invoke_at)}`);
  if (entry.target_invocation_id) bits.push(`invocation ${entry.target_invocation_id}`);
  return bits.join(" · ");
}

function stepOutcome(entry) {
  if (entry.failure) return `<span class="error">failed [${entry.failure.code}] ${escapeHtml(entry.failure.message)}</span>`;
  if ("value" in entry && entry.value !== null && entry.type !== "input") return `<span class="mono">${escapeHtml(json(entry.value))}</span>`;
  return "";
}

function timelineRows(invocation) {
  // Commands, and the cancellation signal (index 1): what runs after it is compensation, as after a failure.
  const isCancel = (e) => e.type === "signal" && e.signal_index === 1;
  const commands = invocation.journal.filter((e) => !["completion", "signal"].includes(e.type) || isCancel(e));
  const start = millis(invocation.created_at);
  const end = Math.max(millis(invocation.completed_at) || Date.now(), ...commands.map((e) => millis(e.completed_at) || millis(e.at) || start));
  const span = Math.max(1, end - start);
  let afterFailure = false;
  return commands.map((entry) => {
    const begin = millis(entry.at) || start;
    const finish = millis(entry.completed_at) || (entry.completion_id !== undefined ? end : begin);
    const classes = ["step", entry.type.replace(/_/g, "-")];
    const badges = [];
    const failed = Boolean(entry.failure) && entry.type !== "output";
    if (afterFailure && entry.type === "run") {
      classes.push("compensation");
      badges.push(`<span class="badge compensation">compensation</span>`);
    }
    if (isCancel(entry)) {
      classes.push("cancelled");
      badges.push(`<span class="badge failed">cancelled</span>`);
      afterFailure = true;
    }
    if (failed) {
      classes.push("failed");
      badges.push(`<span class="badge failed">failed</span>`);
      afterFailure = true;
    }
    if (entry.completion_id !== undefined && !entry.completed_at) classes.push("pending");
    const left = ((begin - start) / span) * 100;
    const width = Math.max(0.3, ((finish - begin) / span) * 100);
    const duration = entry.duration_ms !== undefined ? `${entry.duration_ms} ms` : (entry.completion_id !== undefined && !entry.completed_at ? (invocation.completed_at ? "never finished" : "waiting") : "");
    const callee = entry.callee_id ? ` <a class="mono callee" href="#/invocations/${encodeURIComponent(entry.callee_id)}">${escapeHtml(entry.callee_id)}</a>` : "";
    return `<div class="${classes.join(" ")}" data-type="${escapeHtml(entry.type)}" data-name="${escapeHtml(entry.name || "")}">
      <span class="muted mono">${entry.index}</span>
      <span class="label"><span class="kind">${escapeHtml(entry.type.replace(/_/g, " "))}</span>${escapeHtml(entry.name || "")}${badges.join("")}</span>
      <span class="track"><span class="bar" style="left:${left.toFixed(2)}%;width:${Math.min(width, 100 - left).toFixed(2)}%"></span></span>
      <span class="muted duration">${duration}</span>
      <span class="detail">${escapeHtml(describeStep(entry))}${callee} ${stepOutcome(entry)}</span>
    </div>`;
  }).join("");
}

async function renderInvocation(id) {
  setNav("invocations");
  const load = async () => {
    const inv = await api(`/invocations/${encodeURIComponent(id)}`);
    const failures = inv.events.filter((e) => e.kind === "attempt_failed");
    const warnings = inv.events.filter((e) => e.kind === "warning");
    const output = inv.completion_result === "success" ? `<dt>Output</dt><dd class="mono">${escapeHtml(json(inv.output))}</dd>`
      : inv.completion_result === "failure" ? `<dt>Failed</dt><dd class="error">[${inv.completion_failure.code}] ${escapeHtml(inv.completion_failure.message)}</dd>` : "";
    view.innerHTML = `
      <h1 class="mono">${escapeHtml(inv.id)}</h1>
      <div class="card"><dl class="summary" id="summary">
        <dt>Target</dt><dd>${escapeHtml(inv.target)}</dd>
        <dt>Status</dt><dd>${statusBadge(inv)}</dd>
        <dt>Created</dt><dd>${time(inv.created_at)}</dd>
        ${inv.scheduled_at ? `<dt>Scheduled for</dt><dd>${time(inv.scheduled_at)}</dd>` : ""}
        ${inv.completed_at ? `<dt>Completed</dt><dd>${time(inv.completed_at)}</dd>` : ""}
        ${inv.invoked_by ? `<dt>Invoked by</dt><dd><a class="mono" href="#/invocations/${encodeURIComponent(inv.invoked_by)}">${escapeHtml(inv.invoked_by)}</a></dd>` : ""}
        ${inv.idempotency_key ? `<dt>Idempotency key</dt><dd class="mono">${escapeHtml(inv.idempotency_key)}</dd>` : ""}
        ${inv.awaiting.length ? `<dt>Waiting for</dt><dd>${escapeHtml(inv.awaiting.join(", "))}</dd>` : ""}
        ${inv.trace_id ? `<dt>Trace</dt><dd class="mono" id="trace-id">${escapeHtml(inv.trace_id)}</dd>` : ""}
        <dt>Retries</dt><dd id="retry-count">${inv.retry_count}</dd>
        ${inv.last_failure ? `<dt>Last error</dt><dd class="error" id="last-error">[${inv.last_failure.code}] ${escapeHtml(inv.last_failure.message)}${inv.last_failure.related_entry_name ? ` — in ${escapeHtml(inv.last_failure.related_entry_type || "step")} '${escapeHtml(inv.last_failure.related_entry_name)}'` : ""}</dd>` : ""}
        ${output}
      </dl><div class="actions" id="actions">${invocationActionButtons(inv)}</div></div>
      <h2>Journal</h2>
      ${inv.journal_error ? `<div class="card error">${escapeHtml(inv.journal_error)}</div>` : ""}
      <div class="timeline" id="timeline">${timelineRows(inv)}</div>
      <h2>Retries <span class="muted">(${failures.length})</span></h2>
      <div id="retries">${failures.length === 0 ? `<div class="muted">No failed attempts.</div>` : failures.slice(-20).map((f) => `
        <div class="retry"><strong>attempt ${f.retry_count}</strong> <span class="muted">${time(new Date(f.at_ms).toISOString())}</span>
        ${f.entry_name ? `in <code>${escapeHtml(f.entry_name)}</code>` : ""}<div class="error">${escapeHtml(f.message)}</div></div>`).join("")}
        ${inv.events_dropped ? `<div class="muted">… and ${inv.events_dropped} events between the first and the latest ten, not kept</div>` : ""}</div>
      ${warnings.length ? `<h2>Warnings</h2>${warnings.map((w) => `<div class="retry">${escapeHtml(w.message)}</div>`).join("")}` : ""}`;
    wireInvocationActions(document.getElementById("actions"), actionAnswer(), (action, answer) => {
      if (action === "purge" && answer.ok) keepAnswerAndGo("#/invocations");
      else return route();
    });
    return inv;
  };
  const inv = await load();
  if (inv.status !== "completed") scheduleRefresh(load);
}

// ------------------------------------------------------------------ state explorer

async function renderState(parts) {
  setNav("state");
  const [serviceName, key] = parts;
  const services = (await api("/services")).services.filter((s) => s.ty !== "Service");
  let html = `<h1>State</h1><div class="filters"><label>Service <select id="s-service"><option value="">choose…</option>
    ${services.map((s) => `<option ${s.name === serviceName ? "selected" : ""}>${escapeHtml(s.name)}</option>`).join("")}</select></label>
    <label>Key <input id="s-key" value="${escapeHtml(key || "")}" placeholder="a key"></label></div>`;
  if (serviceName) {
    const keys = await api(`/state/${encodeURIComponent(serviceName)}`);
    html += `<div class="keys" id="state-keys">${keys.keys.map((k) => `<a class="${k === key ? "active" : ""}" href="#/state/${encodeURIComponent(serviceName)}/${encodeURIComponent(k)}">${escapeHtml(k)}</a>`).join("") || `<span class="muted">No key of ${escapeHtml(serviceName)} has state.</span>`}</div>`;
  }
  if (serviceName && key !== undefined) {
    const state = await api(`/state/${encodeURIComponent(serviceName)}/${encodeURIComponent(key)}`);
    const entries = Object.entries(state.state);
    html += `<h2>${escapeHtml(serviceName)} / ${escapeHtml(key)}</h2>` + (entries.length === 0 ? `<div class="empty">No state.</div>`
      : `<table id="state"><thead><tr><th>Name</th><th>Value</th></tr></thead><tbody>${entries.map(([name, value]) =>
        `<tr data-name="${escapeHtml(name)}"><td class="mono">${escapeHtml(name)}</td><td><pre class="mono">${escapeHtml(JSON.stringify(value, null, 2))}</pre></td></tr>`).join("")}</tbody></table>`);
  }
  view.innerHTML = html;
  const go = () => {
    const service = document.getElementById("s-service").value;
    const k = document.getElementById("s-key").value;
    location.hash = service ? `#/state/${encodeURIComponent(service)}${k ? "/" + encodeURIComponent(k) : ""}` : "#/state";
  };
  document.getElementById("s-service").onchange = go;
  document.getElementById("s-key").onchange = go;
}

// ------------------------------------------------------------------ services

async function renderServices() {
  setNav("services");
  const data = await api("/services");
  view.innerHTML = `<h1>Services</h1><table><thead><tr><th>Service</th><th>Type</th><th>Handlers</th><th>Deployment</th></tr></thead><tbody>
    ${data.services.map((s) => `<tr><td>${escapeHtml(s.name)}</td><td>${escapeHtml(s.ty)}</td>
      <td>${s.handlers.map((h) => `${escapeHtml(h.name)}${h.ty ? ` <span class="muted">(${escapeHtml(h.ty.toLowerCase())})</span>` : ""}`).join(", ")}</td>
      <td class="mono">${escapeHtml(s.deployment_id || "")}</td></tr>`).join("")}</tbody></table>`;
}

// ------------------------------------------------------------------ routing

async function route() {
  clearTimeout(refreshTimer);
  const { parts, params } = parseHash();
  try {
    if (parts[0] === "invocations" && parts[1]) await renderInvocation(parts[1]);
    else if (parts[0] === "state") await renderState(parts.slice(1));
    else if (parts[0] === "services") await renderServices();
    else if (parts[0] === "deployments") await renderDeployments();
    else if (parts[0] === "schedules") await renderSchedules(parts[1]);  // schedules.js
    else await renderInvocations(params);
  } catch (error) {
    view.innerHTML = `<div class="card error">${escapeHtml(error.message)}</div>`;
  }
}

window.addEventListener("hashchange", route);
route();
