/*
 * One prediction's card, drawn the same way on the page (app.js) and in the
 * widget (embed.js). The markup is the <template id="card-template"> from
 * templates/_card.html; this module fills a copy of it in as a RelayClient
 * reports. What differs between the two stays with them: where cards go,
 * the form, and the widget's reports to its host page.
 *
 *   import * as RelayCard from "./page/card.js";
 *   const card = RelayCard.create(template, model, input, "card-1");
 *   RelayCard.follow(card, {apiRoot: "", heartbeatMs: 15000, onStatus: ...});
 *   card.client.start(model.name, input);   // card.root is the <article> to place
 */
import { RelayClient } from "../client/index.js";
import * as outputs from "./outputs.js";
import { clampDeadline, formatDuration, queueLine, secondsLeft } from "./timing.js";

export { formatDuration };

// A new estimate may move the expected finish later by at most this much (ms).
var FINISH_TOLERANCE_MS = 3000;


var STATUS_LABELS = {
  queued: "Queued",
  starting: "Starting",
  processing: "Processing",
  succeeded: "Succeeded",
  failed: "Failed",
  canceled: "Canceled",
  aborted: "Aborted",
};

// The client callbacks the card draws; follow() calls the caller's own after each.
var DRAWERS = {
  onStatus: showStatus,
  onProgress: showProgress,
  onOutput: showOutput,
  onSuccess: showFinished,
  onLogs: showLogs,
  onState: showPhase,
  onError: showClientError,
  onConnection: showCardConnection,
  onSnapshot: showSnapshot,
};

/** A card for one prediction of `model` with `input`, out of the document until the caller places it. */
export function create(template, model, input, idPrefix) {
  var article = template.content.firstElementChild.cloneNode(true);
  var card = {
    root: article,
    model: model,
    input: input,
    prompt: typeof input.prompt === "string" ? input.prompt : "",
    status: article.querySelector(".card-status"),
    bar: article.querySelector(".progress"),
    fill: article.querySelector(".progress-fill"),
    progressText: article.querySelector(".progress-text"),
    output: article.querySelector(".card-output"),
    error: article.querySelector(".card-error"),
    logsPanel: article.querySelector(".card-logs"),
    logs: article.querySelector(".logs-text"),
    fullLog: article.querySelector(".logs-full"),
    cancel: article.querySelector(".card-cancel"),
    remove: article.querySelector(".card-remove"),
    estimateLine: null,
    estimate: null,
    createdAt: Date.now(),
    finishAt: null,
    ticker: null,
    lastSnapshot: null,
    textOutput: null,
    imageKey: null,
    progress: null,
    estimated: false,
    tokenCount: 0,
    chunksSinceSnapshot: 0,
    disconnected: false,
    cancelPressed: false,
    nextFocus: null,
    client: null,
  };
  label(card, idPrefix);
  card.estimateLine = document.createElement("p");
  card.estimateLine.className = "card-estimate";
  card.estimateLine.hidden = true;
  card.progressText.after(card.estimateLine);
  prepareOutput(card);
  setProgress(card, 0);
  card.logsPanel.addEventListener("toggle", function () { scrollLogsToEnd(card); });
  return card;
}

/**
 * Give the card a RelayClient whose callbacks draw it. `options` go to the
 * client as they are, except that a callback the card draws for is called
 * after the drawing, with the same arguments.
 */
export function follow(card, options) {
  var settings = Object.assign({}, options);
  Object.keys(DRAWERS).forEach(function (name) {
    settings[name] = drawThenCall(card, DRAWERS[name], options[name]);
  });
  card.client = new RelayClient(settings);
  card.cancel.addEventListener("click", function () { cancel(card); });
  return card.client;
}

function drawThenCall(card, draw, callback) {
  return function () {
    var args = Array.prototype.slice.call(arguments);
    draw.apply(null, [card].concat(args));
    if (typeof callback === "function") callback.apply(null, args);
  };
}

/** The article is named by its model and prompt, so a screen reader's list of articles tells them apart. */
function label(card, idPrefix) {
  var title = card.root.querySelector(".card-model");
  var prompt = card.root.querySelector(".card-prompt");
  title.id = idPrefix + "-model";
  prompt.id = idPrefix + "-prompt";
  title.textContent = card.model.name;
  prompt.textContent = card.prompt || "(no prompt)";
  card.root.setAttribute("aria-labelledby", title.id + " " + prompt.id);
}

/** Text output gets its live region now, so assistive technology hears the tokens arrive. */
function prepareOutput(card) {
  if (card.model.kind !== "text") return;
  card.textOutput = document.createElement("p");
  card.textOutput.className = "text-output";
  card.textOutput.setAttribute("aria-live", "polite");
  card.output.appendChild(card.textOutput);
}

function cancel(card) {
  card.cancelPressed = true;
  card.cancel.disabled = true;
  card.client.cancel().catch(function (err) {
    card.cancel.disabled = false;
    showError(card, err.message);
  });
}

export function isFinished(phase) {
  return phase === "succeeded" || phase === "failed" || phase === "canceled" || phase === "error";
}

/* ---------------- status and phase ---------------- */

function showStatus(card, status) {
  card.root.dataset.status = status;
  card.status.textContent = STATUS_LABELS[status] || status;
}

function showPhase(card, state) {
  card.root.dataset.phase = state.phase;
  if (state.id) card.root.dataset.predictionId = state.id;
  var finished = isFinished(state.phase);
  card.cancel.hidden = finished;
  if (card.remove) card.remove.hidden = !finished;
  if (state.phase === "error") card.status.textContent = "Error";
  if (state.phase === "canceled") describeCancel(card);
  if (state.phase === "failed") describeFailure(card);
  if (finished && card.cancelPressed) moveFocusOn(card);
  if (finished) refreshEstimate(card);
}

/** After Cancel the button goes away: focus goes to the card's next action, not to <body>. */
function moveFocusOn(card) {
  card.cancelPressed = false;
  var active = document.activeElement;
  if (active && active !== document.body && active !== card.cancel) return;
  var next = card.remove && !card.remove.hidden ? card.remove : card.nextFocus;
  if (next) next.focus();
}

/** A failed card says where it stopped, never a stale ETA. */
function describeFailure(card) {
  var progress = card.progress;
  var where = progress && typeof progress.current === "number" && typeof progress.total === "number"
    ? " at step " + progress.current + " of " + progress.total : "";
  card.progressText.textContent = "Failed" + where;
  card.bar.setAttribute("aria-valuetext", card.progressText.textContent);
}

/** While the connection is down the ETA cannot be trusted: it is shown paused. */
function showCardConnection(card, info) {
  var down = info.state === "reconnecting" || info.state === "offline" || info.state === "failed";
  if (down === card.disconnected) return;
  card.disconnected = down;
  if (!isFinished(card.root.dataset.phase)) refreshProgressText(card);
}

function describeCancel(card) {
  var now = card.bar.getAttribute("aria-valuenow");
  card.progressText.textContent = "Canceled" + (now && now !== "0" ? " at " + now + "%" : "");
}

/* ---------------- queue and estimates ---------------- */

/**
 * Every snapshot: a queued card says its place in line; the estimate (from
 * this deployment's past runs) sets "usually starts in ~N s" and the expected
 * finish, which then counts down on a local one-second clock.
 */
function showSnapshot(card, snapshot) {
  card.lastSnapshot = snapshot;
  var created = snapshot.created_at ? Date.parse(snapshot.created_at) : NaN;
  if (!isNaN(created) && created <= Date.now()) card.createdAt = created;
  if (snapshot.status === "queued") {
    card.progressText.textContent = queueLine(snapshot.queue) || "Waiting in line";
    card.bar.setAttribute("aria-valuetext", card.progressText.textContent);
  } else if (card.queued) {
    card.progressText.textContent = "Waiting for the model to start…";
    card.bar.removeAttribute("aria-valuetext");
  }
  card.queued = snapshot.status === "queued";
  var estimate = snapshot.estimate;
  if (estimate && estimate.based_on > 0) {
    card.estimate = estimate;
    if (typeof estimate.finish_in === "number") {
      card.finishAt = clampDeadline(card.finishAt, Date.now() + estimate.finish_in * 1000, FINISH_TOLERANCE_MS);
    }
  }
  refreshEstimate(card);
}

/** The create answer of a queued prediction already says its place in line. */
export function noteCreated(card, created) {
  if (created && created.status === "queued") showSnapshot(card, created);
}

/** The line under the progress text: usual start, time elapsed, time left; hidden once finished. */
function refreshEstimate(card) {
  var status = card.root.dataset.status || "starting";
  var running = status === "starting" || status === "processing" || status === "queued";
  if (isFinished(card.root.dataset.phase) || !running || (card.client && card.client.closed)) {
    stopTicker(card);
    card.estimateLine.hidden = true;
    return;
  }
  var parts = [];
  var estimate = card.estimate;
  if (status === "starting" && estimate && typeof estimate.start_in === "number") {
    parts.push("usually starts in ~" + formatDuration(estimate.start_in));
  }
  parts.push(formatDuration((Date.now() - card.createdAt) / 1000) + " elapsed");
  var etaFromLogs = card.progress && typeof card.progress.eta_seconds === "number";
  if (!etaFromLogs && status !== "queued" && card.finishAt !== null) {
    var left = secondsLeft(card.finishAt, Date.now());
    parts.push(left > 0 ? "about " + formatDuration(left) + " left" : "finishing any moment");
  }
  var line = parts.join(" · ");
  card.estimateLine.textContent = line.charAt(0).toUpperCase() + line.slice(1);
  card.estimateLine.hidden = false;
  if (card.ticker === null) card.ticker = window.setInterval(function () { refreshEstimate(card); }, 1000);
}

function stopTicker(card) {
  if (card.ticker === null) return;
  window.clearInterval(card.ticker);
  card.ticker = null;
}

/**
 * Show at once what a card showed before a reload (`saved` from the page's
 * store): its last snapshot with the log it had, then the text that chunks
 * had added past that snapshot. The client's event position is set too, so
 * following from there receives only later events.
 */
export function restore(card, saved) {
  var snapshot = Object.assign({}, saved.snapshot || { status: "starting" });
  if (typeof saved.logs === "string") {
    snapshot.logs = saved.logs;
    snapshot.logs_offset = saved.logsOffset || 0;
  }
  var position = saved.lastEventId || "";
  if (typeof saved.finishAt === "number") card.finishAt = saved.finishAt;  // the countdown goes on where it was
  card.client.receive("message", snapshot, position);
  var text = typeof saved.text === "string" ? saved.text : "";
  var extra = text.length > card.client.text.length && text.startsWith(card.client.text)
    ? text.slice(card.client.text.length) : "";
  if (extra) {
    card.chunksSinceSnapshot = Math.max(0, (saved.chunks || 1) - 1);
    card.client.receive("output", { text: extra }, position);
  }
  if (typeof saved.percent === "number" && saved.percent > Number(card.bar.getAttribute("aria-valuenow"))) {
    setProgress(card, saved.percent);
  }
}

/** What restore() needs, from a card as it is now. */
export function saveable(card) {
  var client = card.client;
  return {
    snapshot: client.snapshot ? Object.assign({}, client.snapshot, { logs: null }) : null,
    logs: client.logs,
    logsOffset: client.logsOffset,
    text: client.text,
    chunks: card.chunksSinceSnapshot,
    percent: Number(card.bar.getAttribute("aria-valuenow")),
    lastEventId: client.lastEventId,
    finishAt: card.finishAt,
  };
}

/* ---------------- progress ---------------- */

/**
 * The bar moves between updates at the rate they arrive: each change is animated, linearly, over
 * the time the previous one took (a quarter second to four seconds), so polls a second apart read
 * as steady movement rather than jumps. The first update and the last (100 %) move quickly.
 * style.css turns the movement off for people who ask for reduced motion.
 */
function setProgress(card, percent) {
  var clamped = Math.max(0, Math.min(100, percent));
  var now = Date.now();
  var since = card.progressAt ? (now - card.progressAt) / 1000 : 0;
  card.progressAt = now;
  var seconds = clamped >= 100 || !since ? 0.25 : Math.min(4, Math.max(0.25, since));
  card.fill.style.transitionDuration = seconds.toFixed(2) + "s";
  card.fill.style.transitionTimingFunction = "linear";
  card.bar.setAttribute("aria-valuenow", String(Math.round(clamped)));
  card.fill.style.width = clamped + "%";
}

function showProgress(card, progress) {
  card.progress = progress;
  var measurable = typeof progress.percent === "number";
  card.bar.classList.toggle("is-indeterminate", !measurable);
  if (measurable) setProgress(card, progress.percent);
  refreshProgressText(card);
  refreshEstimate(card);
}

/** One line under the bar: percent, step, stage, ETA, and for text models the tokens so far. */
function refreshProgressText(card) {
  var parts = card.progress ? describeProgress(card) : [];
  if (!card.progress && card.estimated) parts.push(card.bar.getAttribute("aria-valuenow") + "%");
  if (card.model.kind === "text" && card.tokenCount > 0) parts.push(describeTokens(card));
  if (parts.length === 0) return;
  var text = parts.join(" · ");
  card.progressText.textContent = text;
  card.bar.setAttribute("aria-valuetext", text);
}

function describeProgress(card) {
  var progress = card.progress;
  var parts = [];
  var percent = typeof progress.percent === "number" ? card.bar.getAttribute("aria-valuenow") : null;
  if (percent !== null) parts.push(percent + "%");
  if (typeof progress.current === "number" && typeof progress.total === "number") {
    parts.push("step " + progress.current + " of " + progress.total);
  } else if (typeof progress.current === "number") {
    parts.push("step " + progress.current);
  }
  if (progress.step) parts.push(progress.step);
  if (typeof progress.eta_seconds === "number" && progress.eta_seconds > 0 && percent !== "100") {
    parts.push(card.disconnected ? "time left paused while reconnecting"
      : "about " + formatDuration(progress.eta_seconds) + " left");
  }
  return parts;
}

function describeTokens(card) {
  var budget = card.input.max_tokens;
  var status = card.root.dataset.status;
  var running = !status || status === "processing" || status === "starting";
  if (running && typeof budget === "number") return card.tokenCount + " of up to " + budget + " tokens";
  return card.tokenCount + (card.tokenCount === 1 ? " token" : " tokens");
}

/* ---------------- output ---------------- */

function showOutput(card, output) {
  if (card.model.kind === "text") {
    showText(card, output);
    return;
  }
  // Outputs by kind (page/outputs.js): images here as before, video, audio, JSON and files there.
  var view = outputs.outputView(card.model.kind, output.value);
  if (view && view.type === "images") {
    showImages(card, view.urls);
  } else if (view) {
    var key = JSON.stringify(view);
    if (card.imageKey === key) return;
    card.imageKey = key;
    outputs.renderOutput(card.output, view);
  }
}

/** A finished card offers Download (files) or Copy (text, JSON) and shows its run time. */
function showFinished(card, snapshot) {
  var view = outputs.outputView(card.model.kind, snapshot ? snapshot.output : null);
  if (!card.finished) {
    card.finished = document.createElement("div");
    card.finished.className = "card-finished";
    card.root.querySelector(".card-actions").before(card.finished);
  }
  outputs.renderFinished(card.finished, view, snapshot ? snapshot.metrics : null);
}

function showText(card, output) {
  if (output.text === null) return;
  card.textOutput.textContent = output.text;
  // The snapshot's token list is authoritative; chunks after it add one each,
  // and a replayed chunk (after a reconnect) never counts twice.
  var tokens = Array.isArray(output.value) ? output.value.length : 0;
  if (output.delta) {
    card.chunksSinceSnapshot += 1;
  } else {
    card.chunksSinceSnapshot = 0;
  }
  card.tokenCount = tokens + card.chunksSinceSnapshot;
  if (output.text) markRunning(card);
  estimateTextProgress(card);
  refreshProgressText(card);
}

/** Text models log nothing measurable: tokens against max_tokens stand in until the server knows better. */
function estimateTextProgress(card) {
  var budget = card.input.max_tokens;
  if (card.progress || typeof budget !== "number" || budget <= 0) return;
  card.estimated = true;
  setProgress(card, (100 * Math.min(card.tokenCount, budget)) / budget);
}

/** Snapshots repeat the output; the images are rebuilt only when their URLs change, so they never flicker. */
function showImages(card, urls) {
  var key = urls.join("\n");
  if (card.imageKey === key) return;
  card.imageKey = key;
  card.output.innerHTML = "";
  card.output.classList.toggle("output-grid", urls.length > 1);
  urls.forEach(function (url, index) {
    var alt = "Generated image for: " + card.prompt + (urls.length > 1 ? " (" + (index + 1) + ")" : "");
    card.output.appendChild(imageFigure(url, alt));
  });
}

function imageFigure(url, alt) {
  var figure = document.createElement("figure");
  var link = document.createElement("a");
  var image = document.createElement("img");
  link.href = url;
  link.target = "_blank";
  link.rel = "noopener";
  image.src = url;
  image.alt = alt;
  image.decoding = "async";
  link.appendChild(image);
  figure.appendChild(link);
  return figure;
}

/* ---------------- logs and errors ---------------- */

/**
 * The client reassembles the log (the first snapshot's tail plus deltas);
 * the card shows what it has and links the whole log. Logs follow their tail
 * unless the person scrolled up to read. The first log line also means the
 * model runs, whatever the last snapshot's status said.
 */
function showLogs(card, logs) {
  var pre = card.logs;
  var atEnd = pre.scrollHeight - pre.scrollTop - pre.clientHeight < 24;
  pre.textContent = (card.client && card.client.logsOffset > 0 ? "…\n" : "") + (logs || "");
  if (atEnd) scrollLogsToEnd(card);
  var url = card.client ? card.client.logsUrl : null;
  if (card.fullLog && url) {
    card.fullLog.href = url;
    card.fullLog.hidden = false;
  }
  if (logs) markRunning(card);
}

/** Output or logs arriving while the status still says "starting": the model runs. */
function markRunning(card) {
  if (card.root.dataset.status === "starting") card.status.textContent = STATUS_LABELS.processing;
}

function scrollLogsToEnd(card) {
  card.logs.scrollTop = card.logs.scrollHeight;
}

function showClientError(card, error) {
  // A refused POST made no prediction; each page shows that sentence by its form instead.
  if (error.kind === "request") return;
  showError(card, error.message);
}

function showError(card, message) {
  card.error.textContent = message;
  card.error.hidden = false;
}
