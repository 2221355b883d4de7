// The Deployments page: what is registered, registering an endpoint by its URL, removing one.
// Loaded before app.js, which routes #/deployments here; uses its helpers (api, escapeHtml, setNav, time).
"use strict";

async function renderDeployments() {
  setNav("deployments");
  view.innerHTML = `
    <h1>Deployments</h1>
    <form class="card register" id="register-form">
      <label>Endpoint URL <input id="register-uri" type="url" required placeholder="http://localhost:9080" size="40"></label>
      <label class="check"><input id="register-http11" type="checkbox"> use HTTP/1.1</label>
      <button type="submit" id="register-button">Register</button>
    </form>
    <div id="deployment-answer" class="answer" hidden></div>
    <div id="deployment-list"></div>`;
  const load = async () => {
    const data = await api("/deployments");
    document.getElementById("deployment-list").innerHTML = data.deployments.length === 0
      ? `<div class="empty">No deployment is registered. Register an endpoint served with durio.app(...) or an official Restate SDK.</div>`
      : `<table id="deployments"><thead><tr><th>Deployment</th><th>Endpoint</th><th>Protocol</th><th>Services</th><th>Registered</th><th></th></tr></thead><tbody>
        ${data.deployments.map((d) => `<tr data-id="${escapeHtml(d.id)}">
          <td class="mono">${escapeHtml(d.id)}</td><td class="mono endpoint">${escapeHtml(d.uri)}</td>
          <td>${escapeHtml(d.protocol_type)} <span class="muted">${escapeHtml(d.http_version)}</span></td>
          <td class="services">${d.services.map((s) => `<a href="#/invocations?service=${encodeURIComponent(s.name)}">${escapeHtml(s.name)}</a>`).join(", ")}</td>
          <td>${time(d.created_at)}</td>
          <td><button class="danger" data-remove="${escapeHtml(d.id)}">Remove</button></td></tr>`).join("")}
        </tbody></table>`;
    for (const button of document.querySelectorAll("[data-remove]")) {
      button.onclick = () => confirmAction({
        title: `Remove deployment ${button.dataset.remove}?`,
        detail: "Its services stop being served. durio refuses while an unfinished invocation still needs them.",
        confirmLabel: "Remove",
        run: () => apiCall("DELETE", `/deployments/${encodeURIComponent(button.dataset.remove)}`),
        answerElement: document.getElementById("deployment-answer"),
        describe: (answer) => answer.ok ? `removed ${button.dataset.remove}` : answer.message,
        after: load,
      });
    }
  };
  document.getElementById("register-form").onsubmit = async (event) => {
    event.preventDefault();
    const button = document.getElementById("register-button");
    button.disabled = true;
    const answer = await apiCall("POST", "/deployments", {
      uri: document.getElementById("register-uri").value.trim(),
      use_http_11: document.getElementById("register-http11").checked,
    });
    button.disabled = false;
    showAnswer(document.getElementById("deployment-answer"), answer,
      answer.ok ? `registered ${answer.body.id} with ${answer.body.services.map((s) => s.name).join(", ")}` : answer.message);
    if (answer.ok) document.getElementById("register-uri").value = "";
    await load();
  };
  await load();
}
