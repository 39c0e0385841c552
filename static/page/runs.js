/*
 * The visitor's runs on the page: the "Your runs" list from GET /api/runs,
 * and the store of unfinished runs in localStorage that lets a reloaded page
 * reattach to them.
 *
 * The store keeps, per unfinished prediction, what its card showed (last
 * snapshot, log, text, the client's last event id) with its model, input and
 * URLs. GET /api/runs is the source of truth: after a reload, an entry the
 * server no longer lists is dropped, one it lists as finished is shown
 * finished from its record, and only the rest are followed again, from their
 * last event id, with the freshly signed URLs of that answer.
 */

var STORE_KEY = "relay.unfinished-runs.v1";
var MAX_ENTRIES = 50;
var QUEUE_PREFIX = "rq-";  // the admission queue's own ids (docs/spend-guard.md)

function storage() {
  try {
    return window.localStorage;
  } catch (err) {
    return null;  // storage refused (privacy settings): no reattach, nothing breaks
  }
}

/** Every saved entry, by prediction id. */
export function loadSaved() {
  var store = storage();
  if (!store) return {};
  try {
    var parsed = JSON.parse(store.getItem(STORE_KEY) || "{}");
    return parsed && typeof parsed === "object" && !Array.isArray(parsed) ? parsed : {};
  } catch (err) {
    return {};
  }
}

function writeAll(entries) {
  var store = storage();
  if (!store) return;
  var ids = Object.keys(entries);
  if (ids.length > MAX_ENTRIES) {
    ids.sort(function (a, b) { return (entries[a].savedAt || 0) - (entries[b].savedAt || 0); });
    ids.slice(0, ids.length - MAX_ENTRIES).forEach(function (id) { delete entries[id]; });
  }
  try {
    store.setItem(STORE_KEY, JSON.stringify(entries));
  } catch (err) {
    /* quota full: the page works on, a reload just cannot reattach */
  }
}

export function saveRun(id, entry) {
  if (!id) return;
  var entries = loadSaved();
  var now = Date.now();
  var since = entries[id] && entries[id].since ? entries[id].since : now;
  entries[id] = Object.assign({}, entry, { savedAt: now, since: since });
  writeAll(entries);
}

export function forgetRun(id) {
  var entries = loadSaved();
  if (!(id in entries)) return;
  delete entries[id];
  writeAll(entries);
}

/** GET /api/runs → the runs list (newest first); rejects on failure. */
export function fetchRuns(apiRoot) {
  return fetch(apiRoot + "/api/runs", { headers: { Accept: "application/json" }, credentials: "same-origin" })
    .then(function (response) {
      if (!response.ok) throw new Error("status " + response.status);
      return response.json();
    })
    .then(function (body) { return (body && Array.isArray(body.runs)) ? body.runs : []; });
}

var FINISHED = { succeeded: true, failed: true, canceled: true, aborted: true };

export function isFinishedStatus(status) {
  return FINISHED[status] === true;
}

/**
 * Split the saved entries by what the server says: `follow` (still
 * unfinished: [entry, run]), `finished` ([entry, run]); entries the server
 * does not list are forgotten.
 */
export function reconcile(saved, runs) {
  var byId = {};
  runs.forEach(function (run) { byId[run.id] = run; });
  var result = { follow: [], finished: [] };
  Object.keys(saved).forEach(function (id) {
    var run = byId[id];
    var entry = saved[id];
    if (!run && id.indexOf(QUEUE_PREFIX) === 0 && entry.stream_url) {
      // Relay's own id for a queued create: the records list it under its upstream id once
      // started, but its stream and cancel URLs stay valid throughout, so it is followed as saved.
      result.follow.push([entry, {
        id: id, model: entry.model, input: entry.input, status: "queued",
        stream_url: entry.stream_url, cancel_url: entry.cancel_url,
      }]);
    } else if (!run) {
      forgetRun(id);
    } else if (isFinishedStatus(run.status)) {
      forgetRun(id);
      result.finished.push([entry, run]);
    } else {
      result.follow.push([entry, run]);
    }
  });
  return result;
}

/** A finished run's record as the snapshot a stream would end with. */
export function snapshotOfRun(run) {
  return {
    id: run.id,
    status: run.status,
    output: run.output === undefined ? null : run.output,
    error: run.error || null,
    metrics: run.metrics || null,
    created_at: run.created_at,
    started_at: run.started_at,
    completed_at: run.completed_at,
    logs: null,
    progress: null,
  };
}

/* ---------------- the list ---------------- */

var STATUS_WORDS = {
  queued: "Queued", starting: "Starting", processing: "Processing", succeeded: "Succeeded",
  failed: "Failed", canceled: "Canceled", aborted: "Aborted",
};

function promptOf(run) {
  var input = run.input || {};
  return typeof input.prompt === "string" && input.prompt !== "" ? input.prompt : "(no prompt)";
}

function thumbnailUrl(run) {
  if (run.status !== "succeeded") return null;
  var output = Array.isArray(run.output) ? run.output[0] : run.output;
  if (typeof output !== "string") return null;
  return /\.(png|jpe?g|webp|gif|avif)(\?|#|$)/i.test(output) ? output : null;
}

/** Draw the list into `list` (a <ul>); `onOpen(run)` when the person opens one. */
export function renderList(list, runs, onOpen) {
  list.innerHTML = "";
  runs.forEach(function (run) {
    var item = document.createElement("li");
    item.className = "run-item";
    item.dataset.runId = run.id;
    item.dataset.status = run.status;
    var button = document.createElement("button");
    button.type = "button";
    button.className = "run-open";
    var thumb = thumbnailUrl(run);
    if (thumb) {
      var image = document.createElement("img");
      image.src = thumb;
      image.alt = "";
      image.width = 48;
      image.height = 48;
      image.loading = "lazy";
      image.className = "run-thumb";
      button.appendChild(image);
    }
    var words = document.createElement("span");
    words.className = "run-words";
    var prompt = document.createElement("span");
    prompt.className = "run-prompt";
    prompt.textContent = promptOf(run);
    var meta = document.createElement("span");
    meta.className = "run-meta";
    meta.textContent = (STATUS_WORDS[run.status] || run.status) + " · " + run.model;
    words.append(prompt, meta);
    button.appendChild(words);
    button.addEventListener("click", function () { onOpen(run); });
    item.appendChild(button);
    list.appendChild(item);
  });
}
