// The Segue page: search songs, build a playlist, ask for the next songs, or look up a user;
// report impressions and clicks on the lists shown (POST /v1/feedback); see the Monitoring tab.
// Plain DOM APIs and fetch; all text goes in through textContent, never innerHTML.
"use strict";

const $ = (selector) => document.querySelector(selector);
const playlist = [];
let suggestions = [];
let searchTimer = null;
let searchSeq = 0;

async function api(path, options = {}) {
  const response = await fetch(path, {
    ...options,
    headers: { "Content-Type": "application/json", Accept: "application/json", ...(options.headers || {}) },
  });
  const body = await response.json().catch(() => null);
  if (!response.ok) {
    const detail = body && body.detail ? body.detail : `HTTP ${response.status}`;
    throw new Error(detail);
  }
  return body;
}

// Feedback never gets in the way: sent in the background, failures ignored.
function sendFeedback(events) {
  if (!events.length) return;
  fetch("/v1/feedback", {
    method: "POST",
    keepalive: true,
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify({ events }),
  }).catch(() => {});
}

function feedbackEvent(list, item, index, type) {
  return {
    recommendation_id: list.recommendation_id,
    item: item.key,
    type,
    position: index + 1,
    timestamp: new Date().toISOString(),
  };
}

function showError(message) {
  const box = $("#error");
  box.textContent = message;
  box.hidden = !message;
}

async function loadModels() {
  const list = $("#models");
  list.replaceChildren();
  try {
    const body = await api("/v1/models");
    for (const model of body.models) {
      const item = document.createElement("li");
      item.dataset.task = model.task;
      item.textContent = `${model.task}: ${model.name} v${model.version} (${model.algorithm})`;
      list.append(item);
    }
    for (const missing of body.missing) {
      const item = document.createElement("li");
      item.textContent = `${missing.task}: no model`;
      item.title = missing.problem;
      list.append(item);
    }
  } catch (error) {
    const item = document.createElement("li");
    item.textContent = `models unavailable: ${error.message}`;
    list.append(item);
  }
}

function renderSuggestions() {
  const list = $("#suggestions");
  list.replaceChildren();
  suggestions.forEach((song, index) => {
    const item = document.createElement("li");
    item.role = "option";
    item.dataset.index = String(index);
    item.textContent = song.artist ? `${song.artist} - ${song.title}` : song.title;
    item.addEventListener("mousedown", (event) => {
      event.preventDefault();
      addSong(song.key, item.textContent);
    });
    list.append(item);
  });
}

function searchSoon() {
  clearTimeout(searchTimer);
  searchTimer = setTimeout(search, 150);
}

async function search() {
  const query = $("#song-search").value.trim();
  const seq = ++searchSeq;
  if (!query) {
    suggestions = [];
    renderSuggestions();
    return;
  }
  try {
    const body = await api(`/v1/songs/search?limit=8&q=${encodeURIComponent(query)}`);
    if (seq === searchSeq) {
      suggestions = body.items;
      renderSuggestions();
    }
  } catch (error) {
    suggestions = [];
    renderSuggestions();
  }
}

function addSong(value, label) {
  if (!value) return;
  playlist.push({ value, label: label || value });
  $("#song-search").value = "";
  suggestions = [];
  renderSuggestions();
  renderPlaylist();
}

function renderPlaylist() {
  const list = $("#playlist");
  list.replaceChildren();
  playlist.forEach((song, index) => {
    const item = document.createElement("li");
    item.textContent = song.label;
    const remove = document.createElement("button");
    remove.type = "button";
    remove.className = "remove";
    remove.textContent = "×";
    remove.setAttribute("aria-label", `Remove ${song.label}`);
    remove.addEventListener("click", () => {
      playlist.splice(index, 1);
      renderPlaylist();
    });
    item.append(remove);
    list.append(item);
  });
  $("#playlist-empty").hidden = playlist.length > 0;
}

function renderResults(body, allowAdd) {
  sendFeedback(body.items.map((item, index) => feedbackEvent(body, item, index, "impression")));
  const meta = $("#result-meta");
  meta.replaceChildren();
  const model = document.createElement("span");
  model.className = "model";
  model.textContent = `${body.model.name} v${body.model.version} (${body.model.algorithm})`;
  meta.append("From ", model);
  if (body.fallback) {
    const fallback = document.createElement("span");
    fallback.className = "fallback";
    fallback.textContent = ` popularity fallback: ${body.fallback}`;
    meta.append(" —", fallback);
  }
  if (body.unmatched.length) {
    meta.append(` — not found: ${body.unmatched.join(", ")}`);
  }
  const rows = $("#result-table tbody");
  rows.replaceChildren();
  body.items.forEach((item, index) => {
    const row = document.createElement("tr");
    for (const text of [String(index + 1), item.artist, item.title, item.score.toFixed(4)]) {
      const cell = document.createElement("td");
      cell.textContent = text;
      row.append(cell);
    }
    // Opening an item (its title) shows the items that follow it: a click on this list.
    const title = row.children[2];
    title.replaceChildren();
    const open = document.createElement("button");
    open.type = "button";
    open.className = "open";
    open.textContent = item.title;
    open.title = "Show what follows this item";
    open.addEventListener("click", () => {
      sendFeedback([feedbackEvent(body, item, index, "click")]);
      openItem(body.task, item.key);
    });
    title.append(open);
    row.lastChild.className = "score";
    const actions = document.createElement("td");
    if (allowAdd) {
      const add = document.createElement("button");
      add.type = "button";
      add.className = "add";
      add.textContent = "+";
      const label = item.artist ? `${item.artist} - ${item.title}` : item.title;
      add.setAttribute("aria-label", `Add ${label} to the playlist`);
      add.addEventListener("click", () => {
        sendFeedback([feedbackEvent(body, item, index, "click")]);
        addSong(item.key, label);
      });
      actions.append(add);
    }
    row.append(actions);
    rows.append(row);
  });
  $("#results").hidden = false;
}

async function recommendNextSongs() {
  showError("");
  if (!playlist.length) {
    showError("Add at least one song to the playlist first.");
    return;
  }
  try {
    const body = await api("/v1/next-songs", {
      method: "POST",
      body: JSON.stringify({ songs: playlist.map((song) => song.value), k: Number($("#k").value) }),
    });
    renderResults(body, true);
  } catch (error) {
    showError(error.message);
  }
}

async function openItem(task, key) {
  showError("");
  try {
    const k = Number((task === "next-song" ? $("#k") : $("#user-k")).value) || 10;
    const path = `/v1/items/${encodeURIComponent(key)}/similar?task=${task}&k=${k}`;
    renderResults(await api(path), task === "next-song");
  } catch (error) {
    showError(error.message);
  }
}

async function recommendForUser(event) {
  event.preventDefault();
  showError("");
  const user = $("#user-id").value.trim();
  if (!user) {
    showError("Enter a user id.");
    return;
  }
  try {
    const k = Number($("#user-k").value);
    const body = await api(`/v1/users/${encodeURIComponent(user)}/recommendations?k=${k}`);
    renderResults(body, false);
  } catch (error) {
    showError(error.message);
  }
}

function selectTab(mode) {
  for (const name of ["playlist", "user", "monitoring"]) {
    const selected = name === mode;
    $(`#tab-${name}`).setAttribute("aria-selected", String(selected));
    $(`#${name}-mode`).hidden = !selected;
  }
  $("#results").hidden = true;
  showError("");
  if (mode === "monitoring") loadMonitoring();
}

// The Monitoring tab: GET /v1/monitoring/summary (the recent window of the event log).
const TASK_FIGURES = [
  ["lists_served", "Lists served", "count"],
  ["click_through_rate", "Click-through", "percent"],
  ["clicks", "Clicks", "count"],
  ["impressions", "Impressions", "count"],
  ["fallback_rate", "Fallback rate", "percent"],
  ["unmatched_rate", "Unmatched inputs", "percent"],
  ["latency_p50_ms", "Latency p50 (ms)", "number"],
  ["latency_p99_ms", "Latency p99 (ms)", "number"],
  ["coverage", "Catalogue coverage", "percent"],
];

function formatTime(iso) {
  const moment = iso ? new Date(iso) : null;
  if (!moment || Number.isNaN(moment.getTime())) return "";
  return `${moment.toISOString().slice(0, 16).replace("T", " ")} UTC`;
}

function formatFigure(value, kind) {
  if (value === null || value === undefined) return "–";
  if (typeof value !== "number") return String(value);
  if (kind === "percent") return `${(100 * value).toFixed(1)}%`;
  if (kind === "count") return value.toLocaleString("en");
  return Number.isInteger(value) ? String(value) : value.toFixed(3);
}

function figureTable(caption, rows) {
  const table = document.createElement("table");
  table.className = "figures";
  const title = document.createElement("caption");
  title.textContent = caption;
  table.append(title);
  const body = document.createElement("tbody");
  for (const [name, value, flagged] of rows) {
    const row = document.createElement("tr");
    const label = document.createElement("th");
    label.textContent = name;
    const cell = document.createElement("td");
    cell.textContent = value;
    if (flagged) cell.className = "alert";
    row.append(label, cell);
    body.append(row);
  }
  table.append(body);
  return table;
}

function plainEntries(object) {
  return Object.entries(object || {}).map(([name, value]) => {
    if (value && typeof value === "object") {
      const statistic = value.statistic ?? value.value ?? value.distance;
      let shown = statistic === undefined ? JSON.stringify(value) : formatFigure(statistic);
      if (typeof value.threshold === "number") shown += ` (threshold ${formatFigure(value.threshold)})`;
      return [name.replaceAll("_", " "), value.alert ? `${shown}: alert` : shown, Boolean(value.alert)];
    }
    return [name, formatFigure(value), false];
  });
}

function renderMonitoring(summary) {
  const box = $("#monitoring-body");
  box.replaceChildren();
  const span = summary.window || {};
  $("#monitoring-window").textContent =
    `Lists served from ${formatTime(span.since) || "the start of the log"} to ${formatTime(span.until) || "now"}`;
  const tasks = Object.entries(summary.tasks || {});
  if (!tasks.length) {
    const empty = document.createElement("p");
    empty.className = "hint";
    empty.textContent = "No lists served in this window yet.";
    box.append(empty);
  }
  for (const [task, figures] of tasks) {
    const section = document.createElement("div");
    section.className = "task-summary";
    section.dataset.task = task;
    const rows = TASK_FIGURES.filter(([key]) => key in figures).map(([key, label, kind]) => [
      label,
      formatFigure(figures[key], kind),
      false,
    ]);
    section.append(figureTable(task, rows));
    const guardrails = Object.entries(figures.guardrails || {}).map(([name, value]) => [
      name.replaceAll("_", " "),
      formatFigure(value),
      typeof value === "number" && value > 0,
    ]);
    if (guardrails.length) section.append(figureTable(`${task}: guardrails`, guardrails));
    box.append(section);
  }
  const drift = plainEntries(summary.drift);
  if (drift.length) box.append(figureTable("Input drift (latest check)", drift));
  else {
    const none = document.createElement("p");
    none.className = "hint";
    none.textContent = "Input drift: no check yet (segue monitor check writes one).";
    box.append(none);
  }
  const alerts = $("#monitoring-alerts");
  alerts.replaceChildren();
  for (const alert of summary.alerts || []) {
    const item = document.createElement("li");
    const name = alert.check || alert.name || "alert";
    item.textContent = alert.message ? `${name}: ${alert.message}` : name;
    alerts.append(item);
  }
  if (!alerts.children.length) {
    const item = document.createElement("li");
    item.className = "none";
    item.textContent = "No alerts.";
    alerts.append(item);
  }
}

async function loadMonitoring() {
  try {
    renderMonitoring(await api("/v1/monitoring/summary"));
  } catch (error) {
    showError(`Monitoring summary unavailable: ${error.message}`);
  }
}

document.addEventListener("DOMContentLoaded", () => {
  $("#song-search").addEventListener("input", searchSoon);
  $("#song-form").addEventListener("submit", (event) => {
    event.preventDefault();
    const typed = $("#song-search").value.trim();
    const first = suggestions[0];
    if (first) addSong(first.key, first.artist ? `${first.artist} - ${first.title}` : first.title);
    else addSong(typed, typed);
  });
  $("#recommend").addEventListener("click", recommendNextSongs);
  $("#clear").addEventListener("click", () => {
    playlist.length = 0;
    renderPlaylist();
  });
  $("#user-form").addEventListener("submit", recommendForUser);
  $("#tab-playlist").addEventListener("click", () => selectTab("playlist"));
  $("#tab-user").addEventListener("click", () => selectTab("user"));
  $("#tab-monitoring").addEventListener("click", () => selectTab("monitoring"));
  $("#monitoring-refresh").addEventListener("click", loadMonitoring);
  renderPlaylist();
  loadModels();
});
