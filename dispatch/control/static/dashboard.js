// dispatch dashboard: polls /v1/campaigns, draws each campaign with inline SVG charts.
// No framework, no build step, no network access beyond this server.
"use strict";

const POLL_MS = 1000;
const HISTORY = 300; // samples kept per campaign (5 minutes at 1 s)
const TOKEN_KEY = "dispatch.token";
const SVG = "http://www.w3.org/2000/svg";
const cards = new Map(); // campaign id -> {node, history: [...]}

const tokenInput = document.getElementById("token");
tokenInput.value = sessionStorage.getItem(TOKEN_KEY) || "";
tokenInput.addEventListener("change", () => {
  sessionStorage.setItem(TOKEN_KEY, tokenInput.value.trim());
  poll();
});

function headers() {
  const token = sessionStorage.getItem(TOKEN_KEY);
  return token ? { Authorization: "Bearer " + token } : {};
}

function setStatus(text, isError) {
  const node = document.getElementById("status");
  node.textContent = text;
  node.classList.toggle("error", Boolean(isError));
}

async function api(method, path) {
  const response = await fetch(path, { method, headers: headers(), cache: "no-store" });
  const body = await response.json().catch(() => ({}));
  if (!response.ok) {
    throw new Error(body.detail || response.status + " " + response.statusText);
  }
  return body;
}

function show(value) {
  return value === null || value === undefined ? "–" : String(value);
}

function field(node, name, value) {
  node.querySelector('[data-field="' + name + '"]').textContent = show(value);
}

function card(id) {
  let entry = cards.get(id);
  if (!entry) {
    const node = document.getElementById("campaign-template").content.firstElementChild.cloneNode(true);
    node.dataset.campaign = id;
    for (const button of node.querySelectorAll("button[data-action]")) {
      button.addEventListener("click", () => act(id, button.dataset.action, node));
    }
    document.getElementById("campaigns").appendChild(node);
    entry = { node, history: [] };
    cards.set(id, entry);
  }
  return entry;
}

async function act(id, action, node) {
  if (action === "cancel" && !window.confirm("Cancel campaign " + id + " for good?")) {
    return;
  }
  try {
    const view = await api("POST", "/v1/campaigns/" + encodeURIComponent(id) + "/" + action);
    field(node, "message", action + " sent: " + view.state);
    render(view);
  } catch (error) {
    field(node, "message", action + " refused: " + error.message);
  }
}

const MIN_SPAN = 60; // samples the x axis shows at least (it widens up to HISTORY)

function line(svg, points, color, maxY, span) {
  if (points.length < 1) return;
  const path = document.createElementNS(SVG, "polyline");
  const coords = points.map(([i, y]) => (i * 400 / span).toFixed(1) + "," +
                                        (135 - (y / maxY) * 125).toFixed(1));
  path.setAttribute("points", coords.join(" "));
  path.setAttribute("fill", "none");
  path.setAttribute("stroke", color);
  path.setAttribute("stroke-width", "2");
  path.setAttribute("vector-effect", "non-scaling-stroke");
  svg.appendChild(path);
}

function text(svg, x, y, anchor, content) {
  const label = document.createElementNS(SVG, "text");
  label.setAttribute("x", String(x));
  label.setAttribute("y", String(y));
  label.setAttribute("font-size", "10");
  label.setAttribute("text-anchor", anchor);
  label.setAttribute("fill", "#667085");
  label.textContent = content;
  svg.appendChild(label);
}

function chart(svg, series) {
  while (svg.firstChild) svg.removeChild(svg.firstChild);
  let maxY = 1;
  let samples = 0;
  for (const s of series) {
    samples = Math.max(samples, s.points.length);
    for (const [, y] of s.points) maxY = Math.max(maxY, y);
  }
  maxY *= 1.1;
  const span = Math.max(MIN_SPAN, samples) - 1;
  for (const s of series) line(svg, s.points, s.color, maxY, span);
  text(svg, 4, 12, "start", "max " + Math.round(maxY / 1.1));
  text(svg, 396, 12, "end", "last " + Math.round((span * POLL_MS) / 1000) + " s");
}

function render(view) {
  const entry = card(view.id);
  const node = entry.node;
  const live = view.live || {};
  const records = view.records || {};
  const limits = view.limits || {};
  const stateNode = node.querySelector('[data-field="state"]');
  stateNode.className = "state " + view.state;
  field(node, "id", view.id);
  field(node, "state", view.state);
  field(node, "waiting_on", view.waiting_on ? "waiting on " + view.waiting_on : "");
  field(node, "dials_last_60s", live.dials_last_60s ?? 0);
  field(node, "max_per_minute", limits.max_per_minute ?? "∞");
  field(node, "live_calls", live.live_calls ?? 0);
  field(node, "max_concurrent", limits.max_concurrent ?? "∞");
  field(node, "pending", records.pending ?? 0);
  field(node, "deferred", view.deferred ?? 0);
  field(node, "completed", records.completed ?? 0);
  field(node, "failed", records.failed ?? 0);
  field(node, "skipped", records.skipped ?? 0);
  field(node, "total_records", view.total_records ?? 0);
  field(node, "next_dial", view.next_dial_in_s === null ? null : view.next_dial_in_s.toFixed(1) + " s");
  node.querySelector('[data-action="pause"]').disabled = view.state !== "running";
  node.querySelector('[data-action="resume"]').disabled = view.state !== "paused";
  node.querySelector('[data-action="cancel"]').disabled = !["running", "paused"].includes(view.state);
  return entry;
}

function sample(entry, view) {
  const records = view.records || {};
  entry.history.push({
    rate: (view.live || {}).dials_last_60s ?? 0,
    limit: (view.limits || {}).max_per_minute,
    completed: records.completed ?? 0, failed: records.failed ?? 0, skipped: records.skipped ?? 0,
  });
  if (entry.history.length > HISTORY) entry.history.shift();
  const pts = (key) => entry.history.map((h, i) => [i, h[key] ?? 0]);
  const rate = [{ points: pts("rate"), color: "#1c64f2" }];
  if (entry.history.some((h) => h.limit !== null && h.limit !== undefined)) {
    rate.push({ points: pts("limit"), color: "#b42318" });
  }
  chart(entry.node.querySelector('[data-chart="rate"]'), rate);
  chart(entry.node.querySelector('[data-chart="outcomes"]'), [
    { points: pts("completed"), color: "#12805c" },
    { points: pts("failed"), color: "#b42318" },
    { points: pts("skipped"), color: "#98a2b3" },
  ]);
}

let polling = false;
async function poll() {
  if (polling) return;
  polling = true;
  try {
    const body = await api("GET", "/v1/campaigns");
    for (const view of body.campaigns) sample(render(view), view);
    setStatus("updated " + new Date().toLocaleTimeString(), false);
    document.body.dataset.updates = String(Number(document.body.dataset.updates || 0) + 1);
  } catch (error) {
    setStatus(error.message, true);
  } finally {
    polling = false;
  }
}

poll();
setInterval(poll, POLL_MS);
