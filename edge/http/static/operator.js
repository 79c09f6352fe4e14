// The operator page: open alerts (with a chart of the sensor around the alert), tasks with
// their history, quarantine, buffer and sync health, and the decision buttons. Everything
// comes from this gateway; the operator token is asked for and kept in sessionStorage only.
"use strict";
const POLL_MS = 2000;
// Items per page of a list; "Show more" adds a page (walking the API's X-Next-Cursor).
const PAGE = Math.min(1000, Math.max(1, Number(new URLSearchParams(location.search).get("page_size")) || 50));
const session = { token: sessionStorage.getItem("edge.token"), actor: sessionStorage.getItem("edge.actor"),
                  role: sessionStorage.getItem("edge.role") };
const wanted = { alerts: PAGE, tasks: PAGE };
const $ = (selector) => document.querySelector(selector);
const charts = new Map(); // alert id -> svg markup (fetched once per alert)

function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
    else if (value !== undefined && value !== null && value !== false) node.setAttribute(key, value);
  }
  for (const child of children) node.append(child instanceof Node ? child : String(child ?? ""));
  return node;
}

async function api(path, options = {}, token = session.token) {
  const response = await fetch(path, { ...options, headers: {
    "Authorization": `Bearer ${token}`, "Content-Type": "application/json", ...(options.headers || {}) } });
  if (response.status === 401 && token === session.token) {
    signOut("The token was refused."); throw new Error("unauthorized");
  }
  const body = await response.json().catch(() => ({}));
  return { status: response.status, body, next: response.headers.get("X-Next-Cursor") };
}

// Up to `count` items of a list, newest first, page by page; `more`: the list goes on.
async function fetchList(path, count) {
  const items = [];
  let cursor = null;
  do {
    const limit = Math.min(count - items.length, 1000);
    const sep = path.includes("?") ? "&" : "?";
    const page = await api(`${path}${sep}limit=${limit}` + (cursor ? `&cursor=${encodeURIComponent(cursor)}` : ""));
    if (!Array.isArray(page.body)) break;
    items.push(...page.body);
    cursor = page.next;
  } while (cursor && items.length < count);
  return { items, more: Boolean(cursor) };
}

function when(iso) { return iso ? new Date(iso).toLocaleString() : "–"; }
const mayDecide = () => session.role === "operator";

async function decide(kind, id, action, params = {}, note = "") {
  const { status, body } = await api(`/api/v1/${kind}s/${encodeURIComponent(id)}/decisions`, {
    method: "POST", body: JSON.stringify({ action, actor: session.actor, note, params }) });
  if (status >= 400) {
    const allowed = (body.allowed_actions || []).join(", ");
    const detail = typeof body.detail === "string" ? body.detail : (body.decision?.outcome_detail || status);
    $("#error").textContent = `${action} refused: ${detail}` + (allowed ? ` (allowed now: ${allowed})` : "");
  } else { $("#error").textContent = ""; }
  await refresh();
  return status;
}

function button(label, action, onclick, extra = {}) {
  return el("button", { "data-action": action, onclick, disabled: !mayDecide() || extra.disabled, class: extra.class }, label);
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
    button(acknowledged ? "Acknowledged" : "Acknowledge", "acknowledge", act("acknowledge"),
           { class: "primary", disabled: Boolean(acknowledged) }),
    button("Snooze 1 h", "snooze", snoozeHour),
    button("Close", "close", act("close")),
    button("False alarm", "false_alarm", falseAlarm));
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

async function renderAlerts({ items: alerts, more }) {
  $("#alert-count").textContent = `(${alerts.length}${more ? "+" : ""})`;
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
  $("#more-alerts").hidden = !more;
}

const ALLOWED = { open: ["acknowledge", "start", "assign", "complete", "cancel"],
                  acknowledged: ["start", "assign", "complete", "cancel"],
                  in_progress: ["assign", "complete", "cancel"] };

function taskButtons(task) {
  const act = (action, params = {}, note = "") => () => decide("task", task.task_id, action, params, note);
  const assign = () => { const who = prompt("Assign to:"); if (who) act("assign", { assignee: who })(); };
  const cancel = () => { const why = prompt("Why cancel?"); if (why !== null) act("cancel", { reason: why }, why)(); };
  const handlers = { acknowledge: act("acknowledge"), start: act("start"), assign,
                     complete: () => openComplete(task), cancel };
  return el("td", {}, ...(ALLOWED[task.state] || []).map((a) => button(a, a, handlers[a])));
}

function historyLine(h) {
  const work = h.work ? [h.work.fault_found === true ? "fault found" : h.work.fault_found === false ? "no fault found" : "",
                         h.work.parts?.length ? `parts: ${h.work.parts.join(", ")}` : "",
                         h.work.labour_h !== undefined ? `${h.work.labour_h} h` : ""].filter(Boolean).join("; ") : "";
  return el("li", {}, `${when(h.at)} ${h.actor}: ${h.action} ${h.note || ""}${work ? ` (${work})` : ""}`);
}

function renderTasks({ items: active, more }, closed) {
  $("#task-count").textContent = `(${active.length}${more ? "+" : ""} active)`;
  const row = (task) => el("tr", { "data-task-id": task.task_id, class: ALLOWED[task.state] ? "" : "closed" },
    el("td", {}, task.description, el("ul", { class: "history" }, ...(task.details.history || []).slice(-4).map(historyLine))),
    el("td", { class: "state" }, task.state + (task.resolution ? ` (${task.resolution})` : "")),
    el("td", {}, task.priority), el("td", {}, when(task.due_at)), el("td", {}, task.assignee || "–"),
    taskButtons(task));
  $("#tasks tbody").replaceChildren(...active.map(row), ...closed.map(row));
  $("#more-tasks").hidden = !more;
}

// The complete dialog: what was done, fault found (yes / no / not sure), parts, labour.
let completing = null;
function openComplete(task) {
  completing = task;
  $("#complete-form").reset();
  $("#complete-error").textContent = "";
  $("#complete-task").textContent = task.description;
  $("#complete-dialog").showModal();
  $("#complete-note").focus();
}

async function submitComplete(event) {
  event.preventDefault();
  const form = new FormData($("#complete-form"));
  const params = {};
  const fault = form.get("fault_found");
  if (fault) params.fault_found = fault === "yes";
  const parts = String(form.get("parts") || "").split(",").map((p) => p.trim()).filter(Boolean);
  if (parts.length) params.parts = parts;
  const labour = String(form.get("labour_h") || "").trim();
  if (labour !== "") {
    const hours = Number(labour);
    if (!Number.isFinite(hours) || hours < 0) { $("#complete-error").textContent = "Labour: hours, 0 or more."; return; }
    params.labour_h = hours;
  }
  const status = await decide("task", completing.task_id, "complete", params, String(form.get("note") || "").trim());
  if (status < 400) $("#complete-dialog").close();
  else $("#complete-error").textContent = $("#error").textContent;
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
    const [alerts, tasks, done, cancelled, status, pipeline, quarantine] = await Promise.all([
      fetchList("/api/v1/alerts?state=active", wanted.alerts), fetchList("/api/v1/tasks?state=active", wanted.tasks),
      api("/api/v1/tasks?state=done&limit=5"), api("/api/v1/tasks?state=cancelled&limit=5"),
      api("/api/v1/status"), api("/api/v1/pipeline"), api("/api/v1/quarantine?limit=20")]);
    await renderAlerts(alerts);
    const closed = [...(done.body || []), ...(cancelled.body || [])]
      .sort((a, b) => b.updated_at.localeCompare(a.updated_at)).slice(0, 5);
    renderTasks(tasks, closed);
    renderHealth(status.body, pipeline.body);
    renderQuarantine(quarantine.body);
  } catch (error) {
    if (error.message !== "unauthorized") $("#error").textContent = `Gateway not reachable: ${error.message}`;
  }
}

// Sign-in asks the gateway which role the token has: an ingest (sensor) token is refused,
// a read-only one signs in without the decision buttons.
async function signIn(event) {
  event.preventDefault();
  const token = $("#token").value.trim(), actor = $("#actor").value.trim();
  let who;
  try { who = await api("/api/v1/whoami", {}, token); } catch (error) {
    $("#sign-in-error").textContent = `Gateway not reachable: ${error.message}`; return;
  }
  if (who.status === 401) { $("#sign-in-error").textContent = "The token was refused: it is none of this gateway's tokens."; return; }
  if (who.body.role === "ingest") {
    $("#sign-in-error").textContent = "That is the ingest token (http.token), for sensors: it cannot decide. "
      + "Sign in with the operator token (http.operator_token), or a read-only token (http.read_token) to watch.";
    return;
  }
  Object.assign(session, { token, actor, role: who.body.role });
  sessionStorage.setItem("edge.token", token); sessionStorage.setItem("edge.actor", actor);
  sessionStorage.setItem("edge.role", who.body.role);
  $("#token").value = ""; $("#sign-in-error").textContent = "";
  show();
}

function signOut(message = "") {
  for (const key of ["edge.token", "edge.role"]) sessionStorage.removeItem(key);
  session.token = null; session.role = null;
  $("#sign-in-error").textContent = message;
  show();
}

function show() {
  const signedIn = Boolean(session.token);
  $("#sign-in").hidden = signedIn; $("#board").hidden = !signedIn; $("#sign-out").hidden = !signedIn;
  const role = session.role === "operator" ? "operator" : "read-only";
  $("#who").textContent = signedIn ? `signed in as ${session.actor} · ${role} token` : "";
  $("#read-only").hidden = !signedIn || mayDecide();
  if (signedIn && !session.role) {  // signed in before the page knew roles: ask once
    api("/api/v1/whoami").then(({ body }) => {
      session.role = body.role; sessionStorage.setItem("edge.role", body.role); show();
    }).catch(() => {});
  }
  if (signedIn) refresh();
}

$("#sign-in-form").addEventListener("submit", signIn);
$("#sign-out").addEventListener("click", () => signOut());
$("#complete-form").addEventListener("submit", submitComplete);
$("#complete-cancel").addEventListener("click", () => $("#complete-dialog").close());
$("#more-alerts").addEventListener("click", () => { wanted.alerts += PAGE; refresh(); });
$("#more-tasks").addEventListener("click", () => { wanted.tasks += PAGE; refresh(); });
setInterval(refresh, POLL_MS);
show();
