// Acting on what the UI shows: a confirmation step, the admin API's answer, then a refresh.
// Loaded before app.js. The dialog lives outside the view, so the 2 s refresh of a list cannot remove it.
"use strict";

// What an operator may do to an invocation in each status (the admin API refuses the rest, and says why).
const INVOCATION_ACTIONS = {
  cancel: { label: "Cancel", when: (s) => s !== "completed", detail: "The handler sees a TerminalError (409) where it waits; its compensations run." },
  kill: { label: "Kill", when: (s) => s !== "completed", detail: "Stops it at once, with the calls it waits for. No compensation runs." },
  pause: { label: "Pause", when: (s) => ["running", "backing-off", "ready"].includes(s), detail: "No new attempt starts until it is resumed." },
  resume: { label: "Resume", when: (s) => ["paused", "suspended"].includes(s), detail: "Runs it again now." },
  purge: { label: "Purge", when: (s) => s === "completed", detail: "Forgets it: its journal, its result and its idempotency key." },
};

async function apiCall(method, path, body) {
  const options = { method, headers: { accept: "application/json" } };
  if (body !== undefined) {
    options.headers["content-type"] = "application/json";
    options.body = JSON.stringify(body);
  }
  try {
    const response = await fetch(path, options);
    const text = await response.text();
    let parsed = null;
    try { parsed = text ? JSON.parse(text) : null; } catch (_) { parsed = null; }
    const message = (parsed && parsed.message) || text || response.statusText;
    return { ok: response.ok, status: response.status, body: parsed, message };
  } catch (error) {
    return { ok: false, status: 0, body: null, message: `the admin API did not answer: ${error.message}` };
  }
}

function showAnswer(element, answer, text) {
  element.hidden = false;
  element.className = `answer ${answer.ok ? "ok" : "refused"}`;
  element.dataset.status = String(answer.status);
  element.innerHTML = `<span class="code">${answer.status || "—"}</span> ${escapeHtml(text)}`;
}

// Ask before doing; on yes run it, show the answer in answerElement, then call `after` (a refresh).
function confirmAction({ title, detail, confirmLabel, run, answerElement, describe, after }) {
  document.getElementById("confirm")?.remove();
  const dialog = document.createElement("div");
  dialog.id = "confirm";
  dialog.className = "modal";
  dialog.setAttribute("role", "dialog");
  dialog.innerHTML = `<div class="card">
      <h2>${escapeHtml(title)}</h2><p>${escapeHtml(detail)}</p>
      <div class="buttons"><button id="confirm-no">Back</button><button id="confirm-yes" class="danger">${escapeHtml(confirmLabel)}</button></div>
    </div>`;
  document.body.appendChild(dialog);
  document.getElementById("confirm-no").onclick = () => dialog.remove();
  document.getElementById("confirm-yes").onclick = async () => {
    document.getElementById("confirm-yes").disabled = true;
    const answer = await run();
    dialog.remove();
    showAnswer(answerElement, answer, describe(answer));
    if (after) {
      try { await after(answer); } catch (error) { answerElement.insertAdjacentText("beforeend", ` (refresh failed: ${error.message})`); }
    }
  };
}

function invocationActionButtons(inv) {
  return Object.entries(INVOCATION_ACTIONS).filter(([, action]) => action.when(inv.status))
    .map(([name, action]) => `<button class="${["kill", "purge", "cancel"].includes(name) ? "danger" : ""}" data-action="${name}" data-id="${escapeHtml(inv.id)}">${action.label}</button>`)
    .join(" ");
}

// Buttons with data-action anywhere under `root` act on their data-id; the answer goes to answerElement.
function wireInvocationActions(root, answerElement, after) {
  for (const button of root.querySelectorAll("button[data-action]")) {
    const action = INVOCATION_ACTIONS[button.dataset.action];
    const id = button.dataset.id;
    button.onclick = (event) => {
      event.preventDefault();
      confirmAction({
        title: `${action.label} ${id}?`,
        detail: action.detail,
        confirmLabel: action.label,
        run: () => apiCall("PATCH", `/invocations/${encodeURIComponent(id)}/${button.dataset.action}`),
        answerElement,
        describe: (answer) => answer.ok ? `${button.dataset.action}: ${answer.status === 202 ? "accepted" : "done"} for ${id}` : answer.message,
        after: (answer) => after(button.dataset.action, answer),
      });
    };
  }
}

// One answer line under the header for invocation actions: it outlives the view's refreshes, and a
// navigation clears it, unless the action itself navigates (a purged invocation's page goes back to the list).
let keepAnswerOnce = false;

function actionAnswer() {
  return document.getElementById("action-answer");
}

function keepAnswerAndGo(hash) {
  keepAnswerOnce = true;
  location.hash = hash;
}

window.addEventListener("hashchange", () => {
  if (!keepAnswerOnce) actionAnswer().hidden = true;
  keepAnswerOnce = false;
});
