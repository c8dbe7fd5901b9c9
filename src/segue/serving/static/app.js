// The Segue page: search songs, build a playlist, ask for the next songs, or look up a user.
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
    row.lastChild.className = "score";
    const actions = document.createElement("td");
    if (allowAdd) {
      const add = document.createElement("button");
      add.type = "button";
      add.className = "add";
      add.textContent = "+";
      const label = item.artist ? `${item.artist} - ${item.title}` : item.title;
      add.setAttribute("aria-label", `Add ${label} to the playlist`);
      add.addEventListener("click", () => addSong(item.key, label));
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
  for (const name of ["playlist", "user"]) {
    const selected = name === mode;
    $(`#tab-${name}`).setAttribute("aria-selected", String(selected));
    $(`#${name}-mode`).hidden = !selected;
  }
  $("#results").hidden = true;
  showError("");
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
  renderPlaylist();
  loadModels();
});
