// The operator page: open alerts (with a chart of the sensor around the alert), tasks with
// their history, quarantine, buffer and sync health, and the decision buttons. Everything
// comes from this gateway; the operator token is asked for and kept in sessionStorage only.
"use strict";
const POLL_MS = 2000;
const session = { token: sessionStorage.getItem("edge.token"), actor: sessionStorage.getItem("edge.actor") };
const $ = (selector) => document.querySelector(selector);
const charts = new Map(); // alert id -> svg markup (fetched once per alert)

function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
    else if (value !== undefined && value !== null) node.setAttribute(key, value);
  }
  for (const child of children) node.append(child instanceof Node ? child : String(child ?? ""));
  return node;
}

async function api(path, options = {}) {
  const response = await fetch(path, { ...options, headers: {
    "Authorization": `Bearer ${session.token}`, "Content-Type": "application/json", ...(options.headers || {}) } });
  if (response.status === 401) { signOut("The token was refused."); throw new Error("unauthorized"); }
  const body = await response.json().catch(() => ({}));
  return { status: response.status, body };
}

function when(iso) { return iso ? new Date(iso).toLocaleString() : "–"; }

async function decide(kind, id, action, params = {}, note = "") {
  const { status, body } = await api(`/api/v1/${kind}s/${encodeURIComponent(id)}/decisions`, {
    method: "POST", body: JSON.stringify({ action, actor: session.actor, note, params }) });
  if (status >= 400) {
    const allowed = (body.allowed_actions || []).join(", ");
    $("#error").textContent = `${action} refused: ${body.decision?.outcome_detail || body.detail || status}`
      + (allowed ? ` (allowed now: ${allowed})` : "");
  } else { $("#error").textContent = ""; }
  await refresh();
}

function alertButtons(alert) {
  const act = (action, params, note) => () => decide("alert", alert.alert_id, action, params, note);
  const snoozeHour = () => act("snooze", { until: new Date(Date.now() + 3600e3).toISOString() })();
  const falseAlarm = () => {
    const reason = prompt("Why is this a false alarm?");
    if (reason !== null) act("false_alarm", { reason }, reason)();
  };
  const acknowledged = alert.details.acknowledged;
  return el("div", {},
    el("button", { class: "primary", "data-action": "acknowledge", onclick: act("acknowledge"),
                   ...(acknowledged ? { disabled: "" } : {}) }, acknowledged ? "Acknowledged" : "Acknowledge"),
    el("button", { "data-action": "snooze", onclick: snoozeHour }, "Snooze 1 h"),
    el("button", { "data-action": "close", onclick: act("close") }, "Close"),
    el("button", { "data-action": "false_alarm", onclick: falseAlarm }, "False alarm"));
}

async function chartFor(alert) {
  if (charts.has(alert.alert_id)) return charts.get(alert.alert_id);
  const opened = new Date(alert.opened_at).getTime();
  const until = new Date(Math.max(Date.now(), opened + 60e3)).toISOString();
  const minutes = Math.min(24 * 60, Math.max(15, (Date.now() - opened) / 60e3 + 15));
  const { body } = await api(`/api/v1/sensors/${alert.sensor_id}/readings?minutes=${minutes}&until=${until}`);
  const points = Array.isArray(body) ? body : [];
  let svg = "<svg class='chart' viewBox='0 0 300 90' preserveAspectRatio='none'></svg>";
  if (points.length > 1) {
    const xs = points.map((p) => new Date(p.ts).getTime()), ys = points.map((p) => p.value);
    const [x0, x1] = [Math.min(...xs), Math.max(...xs)], [y0, y1] = [Math.min(...ys), Math.max(...ys)];
    const sx = (x) => ((x - x0) / (x1 - x0 || 1)) * 296 + 2, sy = (y) => 86 - ((y - y0) / (y1 - y0 || 1)) * 82;
    const d = points.map((p, i) => `${i ? "L" : "M"}${sx(xs[i]).toFixed(1)},${sy(p.value).toFixed(1)}`).join("");
    const mark = opened >= x0 && opened <= x1 ? `<line class='opened' x1='${sx(opened)}' x2='${sx(opened)}' y1='0' y2='90'/>` : "";
    svg = `<svg class='chart' viewBox='0 0 300 90' preserveAspectRatio='none' aria-label='readings of ${alert.sensor_id}'>`
        + `<path class='line' d='${d}'/>${mark}</svg>`;
  }
  charts.set(alert.alert_id, svg);
  return svg;
}

async function renderAlerts(alerts) {
  $("#alert-count").textContent = `(${alerts.length})`;
  const cards = [];
  for (const alert of alerts) {
    const chart = el("div"); chart.innerHTML = await chartFor(alert);
    const ack = alert.details.acknowledged;
    cards.push(el("article", { class: `card alert ${alert.severity}`, "data-alert-id": alert.alert_id },
      el("h3", {}, `${alert.sensor_id} · ${alert.detector}`),
      el("div", { class: "meta" }, `${alert.severity} · opened ${when(alert.opened_at)} · asset ${alert.asset_id || "–"}`),
      el("p", {}, alert.reason), chart,
      ack ? el("div", { class: "meta ack" }, `acknowledged by ${ack.by} at ${when(ack.at)}`) : "",
      alert.details.snoozed_until ? el("div", { class: "meta" }, `snoozed until ${when(alert.details.snoozed_until)}`) : "",
      alertButtons(alert)));
  }
  $("#alerts").replaceChildren(...(cards.length ? cards : [el("p", { class: "meta" }, "No open alert.")]));
}

function taskButtons(task) {
  const act = (action, params = {}, note = "") => () => decide("task", task.task_id, action, params, note);
  const complete = () => {
    const note = prompt("What was done?"); if (note === null) return;
    act("complete", { fault_found: confirm("Was a fault found? (OK = yes)") }, note)();
  };
  const assign = () => { const who = prompt("Assign to:"); if (who) act("assign", { assignee: who })(); };
  const cancel = () => { const why = prompt("Why cancel?"); if (why !== null) act("cancel", { reason: why }, why)(); };
  const buttons = { acknowledge: act("acknowledge"), start: act("start"), assign, complete, cancel };
  const allowed = { open: ["acknowledge", "start", "assign", "complete", "cancel"],
                    acknowledged: ["start", "assign", "complete", "cancel"],
                    in_progress: ["assign", "complete", "cancel"] }[task.state] || [];
  return el("td", {}, ...allowed.map((a) => el("button", { "data-action": a, onclick: buttons[a] }, a)));
}

function renderTasks(tasks) {
  $("#task-count").textContent = `(${tasks.length})`;
  $("#tasks tbody").replaceChildren(...tasks.map((task) => {
    const history = (task.details.history || []).slice(-4).map((h) => el("li", {}, `${when(h.at)} ${h.actor}: ${h.action} ${h.note || ""}`));
    return el("tr", { "data-task-id": task.task_id },
      el("td", {}, task.description, el("ul", { class: "history" }, ...history)),
      el("td", { class: "state" }, task.state + (task.resolution ? ` (${task.resolution})` : "")),
      el("td", {}, task.priority), el("td", {}, when(task.due_at)), el("td", {}, task.assignee || "–"),
      taskButtons(task));
  }));
}

function renderHealth(status, pipeline) {
  const rows = [["MQTT", status.mqtt_connected ? "connected" : "disconnected"], ["Central", status.central],
    ["Sync lag", status.sync_lag_s === null ? "central not configured" : `${status.sync_lag_s} s`],
    ["Pipeline", `${pipeline.state}, ${pipeline.readings} readings, ${pipeline.pending} pending`],
    ...Object.entries(status.buffer).map(([kind, d]) => [`Buffer ${kind}`, `${d.rows} rows, ${d.unsynced} unsynced`])];
  $("#health").replaceChildren(...rows.flatMap(([k, v]) => [el("dt", {}, k), el("dd", {}, v)]));
  const healthy = status.mqtt_connected && pipeline.state === "running";
  $("#gateway-health").textContent = healthy ? "healthy" : "attention";
  $("#gateway-health").className = `pill ${healthy ? "ok" : "bad"}`;
}

function renderQuarantine(rows) {
  $("#quarantine tbody").replaceChildren(...rows.map((q) => el("tr", {},
    el("td", {}, when(q.received_at)), el("td", {}, q.reason), el("td", {}, q.source), el("td", {}, q.detail))));
}

async function refresh() {
  if (!session.token) return;
  try {
    const [alerts, tasks, status, pipeline, quarantine] = await Promise.all([
      api("/api/v1/alerts?state=open&limit=50"), api("/api/v1/tasks?limit=50"), api("/api/v1/status"),
      api("/api/v1/pipeline"), api("/api/v1/quarantine?limit=20")]);
    await renderAlerts(alerts.body);
    renderTasks(tasks.body.filter((t) => !["done", "cancelled"].includes(t.state)).concat(
      tasks.body.filter((t) => ["done", "cancelled"].includes(t.state)).slice(0, 10)));
    renderHealth(status.body, pipeline.body);
    renderQuarantine(quarantine.body);
  } catch (error) {
    if (error.message !== "unauthorized") $("#error").textContent = `Gateway not reachable: ${error.message}`;
  }
}

function signIn(event) {
  event.preventDefault();
  session.token = $("#token").value.trim(); session.actor = $("#actor").value.trim();
  sessionStorage.setItem("edge.token", session.token); sessionStorage.setItem("edge.actor", session.actor);
  $("#token").value = "";
  show();
}

function signOut(message = "") {
  sessionStorage.removeItem("edge.token"); session.token = null;
  $("#sign-in-error").textContent = message;
  show();
}

function show() {
  const signedIn = Boolean(session.token);
  $("#sign-in").hidden = signedIn; $("#board").hidden = !signedIn; $("#sign-out").hidden = !signedIn;
  $("#who").textContent = signedIn ? `signed in as ${session.actor}` : "";
  if (signedIn) refresh();
}

$("#sign-in-form").addEventListener("submit", signIn);
$("#sign-out").addEventListener("click", () => signOut());
setInterval(refresh, POLL_MS);
show();
