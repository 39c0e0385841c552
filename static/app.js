/*
 * The page: a form that starts predictions and one card per prediction.
 * Every card is followed over one shared /api/events connection, and the
 * tabs of this origin share that one connection too (RelayTabs: a leader tab
 * holds it and relays the events). Cards are drawn by page/card.js and the
 * form's fields by page/controls.js, which the widget (embed.js) uses too.
 * An ES module: it imports what it uses and leaves nothing on window.
 */
import { RelayTabs } from "./client/index.js";
import * as RelayCard from "./page/card.js";
import * as controls from "./page/controls.js";
import * as form from "./page/form.js";
import * as runs from "./page/runs.js";
import { waitSentence, withoutWait } from "./page/timing.js";

var app = document.getElementById("relay-app");
var config = controls.readPageSettings(app);
var dom = {
  form: document.getElementById("prediction-form"),
  model: document.getElementById("model"),
  prompt: document.getElementById("prompt"),
  inputs: document.getElementById("model-inputs"),
  extra: document.getElementById("extra-input"),
  generate: document.getElementById("generate"),
  formError: document.getElementById("form-error"),
  badge: document.getElementById("connection-badge"),
  retry: document.getElementById("retry-now"),
  upstream: document.getElementById("upstream-notice"),
  cards: document.getElementById("cards"),
  emptyHint: document.getElementById("empty-hint"),
  cardTemplate: document.getElementById("card-template"),
  runsList: document.getElementById("runs-list"),
  runsHint: document.getElementById("runs-hint"),
};
var cardsById = new Map();
var runsRefreshTimer = null;
var models = [];
var currentModel = null;
var cardCount = 0;
var degradedPredictions = new Map();
var upstreamTimer = null;
var upstreamShown = null;
var upstreamRetryAt = null;
var lastConnection = { state: "idle", attempt: 0, nextRetryAt: null };
var multiplex = new RelayTabs({
  apiRoot: config.apiRoot,
  heartbeatMs: config.heartbeatMs,
  onConnection: showConnection,
});

/* ---------------- the form ---------------- */

function loadModels() {
  fetch(config.apiRoot + "/api/models", { headers: { Accept: "application/json" } })
    .then(function (response) {
      if (!response.ok) throw new Error("status " + response.status);
      return response.json();
    })
    .then(function (body) {
      models = (body && body.models) || [];
      fillModelPicker(models);
    })
    .catch(function () {
      dom.model.innerHTML = "";
      dom.model.appendChild(new Option("No models available", ""));
      controls.showFormError(dom.formError, "Could not load the list of models. Reload the page to try again.");
    })
    .then(reattach);  // after the models, so each card knows its model's kind
}

function fillModelPicker(list) {
  dom.model.innerHTML = "";
  list.forEach(function (model) {
    dom.model.appendChild(new Option(model.name + " (" + model.kind + ")", model.name));
  });
  dom.model.disabled = list.length === 0;
  dom.generate.disabled = list.length === 0;
  if (list.length > 0) selectModel(list[0]);
}

/** The model's sample prompt replaces the prompt box only while the person has not typed their own. */
function selectModel(model) {
  var previous = currentModel;
  currentModel = model;
  var defaults = model.default_input || {};
  var previousPrompt = previous && previous.default_input ? previous.default_input.prompt : undefined;
  var untouched = dom.prompt.value === "" || dom.prompt.value === previousPrompt;
  if (untouched && typeof defaults.prompt === "string") dom.prompt.value = defaults.prompt;
  // The form from the model's schema (page/form.js); the Prompt box is its `prompt` input.
  dom.prompt.closest(".field").hidden = !hasPrompt(model);
  form.renderFields(dom.inputs, model, { skip: ["prompt"], apiRoot: config.apiRoot });
}

function hasPrompt(model) {
  return !model.editable || model.editable.indexOf("prompt") >= 0;
}

/** The prediction's input from the form; throws an Error with a sentence for the person. */
function readInput() {
  var extra = readExtraInput();
  var input = form.readFields(dom.inputs, currentModel);
  if (hasPrompt(currentModel)) input.prompt = dom.prompt.value;
  return Object.assign(input, extra);
}

function readExtraInput() {
  var text = dom.extra.value.trim();
  if (text === "") return {};
  var parsed;
  try {
    parsed = JSON.parse(text);
  } catch (err) {
    throw new Error("Extra input is not valid JSON: " + err.message);
  }
  if (!parsed || typeof parsed !== "object" || Array.isArray(parsed)) {
    throw new Error("Extra input must be a JSON object, like {\"seed\": 42}.");
  }
  return parsed;
}

function submitPrediction(event) {
  event.preventDefault();
  if (controls.isBusy(dom.generate) || dom.generate.disabled || !currentModel) return;
  controls.clearFormError(dom.formError);
  form.clearInvalid(dom.form);
  var input;
  try {
    input = readInput();
  } catch (err) {
    controls.showFormError(dom.formError, err.message);
    return;
  }
  controls.setBusy(dom.generate, true);
  var card = createCard(currentModel, input);
  card.client.start(currentModel.name, input)
    .then(function (created) {
      RelayCard.noteCreated(card, created);
      cardsById.set(created.id, card);
      persist(card);
      showCard(card);
      refreshRunsSoon();
      controls.setBusy(dom.generate, false);
    }, function (err) {
      card.client.close();
      if (err.status === 429 && waitFrom(err) > 0) {
        countDownRateLimit(err);  // Generate stays unavailable until the wait is over
        return;
      }
      // invalid_input names its field: mark it and move focus there (page/form.js).
      if (!(err.field && form.markInvalid(dom.form, err.field, err.message))) {
        controls.showFormError(dom.formError, err.message);
      }
      controls.setBusy(dom.generate, false);
    });
}

/* ---------------- cards ---------------- */

/** A card for one prediction, kept out of the page until its POST succeeds. */
function createCard(model, input) {
  cardCount += 1;
  var card = RelayCard.create(dom.cardTemplate, model, input, "card-" + cardCount);
  RelayCard.follow(card, {
    apiRoot: config.apiRoot,
    heartbeatMs: config.heartbeatMs,
    multiplex: multiplex,
    onUpstream: function (upstream) { noteUpstream(card, upstream); },
    onSnapshot: function () { persist(card); },
    onOutput: function () { persist(card); },
    onLogs: function () { persist(card); },
    onState: function (state) { stateChanged(card, state); },
  });
  card.remove.addEventListener("click", function () { removeCard(card); });
  return card;
}

/** The new card goes first and into view (on a phone it would land below the fold). */
function showCard(card) {
  dom.cards.prepend(card.root);
  dom.emptyHint.hidden = true;
  var box = card.root.getBoundingClientRect();
  if (box.top < 0 || box.bottom > window.innerHeight) {
    card.root.scrollIntoView({ block: "nearest", behavior: "smooth" });
  }
}

/* ---------------- runs: the list, the store, reattach ---------------- */

/** Keep what an unfinished card shows, so a reload can show it again and resume after its last event. */
function persist(card) {
  var client = card.client;
  var id = client.state.id;
  if (!id || RelayCard.isFinished(client.phase) || client.closed || !client.prediction) return;
  if (!client.prediction.stream_url) return;
  runs.saveRun(id, Object.assign({
    model: card.model.name,
    kind: card.model.kind,
    input: card.input,
    stream_url: client.prediction.stream_url,
    cancel_url: client.prediction.cancel_url,
  }, RelayCard.saveable(card)));
}

function stateChanged(card, state) {
  if (!state.id) return;
  if (RelayCard.isFinished(state.phase)) {
    runs.forgetRun(state.id);
    refreshRunsSoon();
  } else {
    persist(card);
  }
}

/** After a reload: list the runs, show the saved ones again, follow those still unfinished. */
function reattach() {
  runs.fetchRuns(config.apiRoot).then(function (list) {
    showRuns(list);
    var plan = runs.reconcile(runs.loadSaved(), list);
    // Oldest first, each prepended: the newest ends on top, as the server lists them.
    var order = plan.follow.concat(plan.finished).sort(function (a, b) {
      return (a[0].since || 0) - (b[0].since || 0);
    });
    order.forEach(function (pair) { openRun(pair[1], pair[0], false); });
  }, function () {
    dom.runsHint.textContent = "Could not load your runs. Reload the page to try again.";
  });
}

function refreshRunsSoon() {
  if (runsRefreshTimer !== null) window.clearTimeout(runsRefreshTimer);
  runsRefreshTimer = window.setTimeout(function () {
    runsRefreshTimer = null;
    runs.fetchRuns(config.apiRoot).then(showRuns, function () {});
  }, 300);
}

function showRuns(list) {
  dom.runsHint.textContent = list.length ? "" : "Runs you start appear here, and stay after a reload.";
  dom.runsHint.hidden = list.length > 0;
  runs.renderList(dom.runsList, list, function (run) { openRun(run, runs.loadSaved()[run.id] || null, true); });
}

/**
 * Open a run's card: a finished one shows its record's final state, an
 * unfinished one is followed from `saved.lastEventId` (what it showed before
 * is shown again first), or from the start when nothing was saved.
 */
function openRun(run, saved, focus) {
  var open = cardsById.get(run.id);
  if (open && open.root.isConnected) {
    if (focus) reveal(open);
    return;
  }
  var model = controls.findModel(models, run.model)
    || { name: run.model, kind: (saved && saved.kind) || "image" };
  var card = createCard(model, run.input || {});
  var client = card.client;
  cardsById.set(run.id, card);
  card.root.dataset.predictionId = run.id;
  if (runs.isFinishedStatus(run.status)) {
    client.prediction = { id: run.id, status: null, stream_url: run.stream_url, cancel_url: run.cancel_url };
    client.receive("message", runs.snapshotOfRun(run), "");
  } else {
    if (saved) RelayCard.restore(card, saved);
    client.follow(run.stream_url, {
      id: run.id, cancelUrl: run.cancel_url, lastEventId: saved ? saved.lastEventId : "",
    });
  }
  showCard(card);
  if (focus) reveal(card);
}

function reveal(card) {
  card.root.scrollIntoView({ block: "nearest" });
  var target = card.root.querySelector("button:not([hidden])");
  if (target) target.focus({ preventScroll: true });
}

/** "Try again in N seconds", counting down, with Generate unavailable until then. */
function waitFrom(err) {
  if (err.retryAfterMs > 0) return err.retryAfterMs;
  var said = /in (\d+) seconds?/.exec(err.message || "");
  return said ? Number(said[1]) * 1000 : 0;
}

function countDownRateLimit(err) {
  var until = Date.now() + waitFrom(err);
  var sentence = withoutWait(err.message);
  controls.setBusy(dom.generate, true);
  function tick() {
    var left = Math.ceil((until - Date.now()) / 1000);
    if (left <= 0) {
      controls.clearFormError(dom.formError);
      controls.setBusy(dom.generate, false);
      return;
    }
    controls.showFormError(dom.formError, (sentence ? sentence + " " : "") + waitSentence(left * 1000));
    window.setTimeout(tick, 1000 - ((until - Date.now()) % 1000 || 0));
  }
  tick();
}

function removeCard(card) {
  var next = card.root.nextElementSibling || card.root.previousElementSibling;
  card.client.close();
  cardsById.delete(card.root.dataset.predictionId);
  degradedPredictions.delete(card.root.dataset.predictionId);
  renderUpstreamNotice();
  card.root.remove();
  dom.emptyHint.hidden = dom.cards.children.length > 0;
  var focusTarget = next ? next.querySelector("button:not([hidden])") : null;
  (focusTarget || dom.generate).focus();
}

/* ---------------- connection and upstream ---------------- */

/** The last report is kept: going offline or back online changes the badge between the client's reports. */
function showConnection(info) {
  lastConnection = info;
  var label = controls.showConnection(dom.badge, info);
  dom.retry.hidden = !(label === "reconnecting" || (label === "offline" && info.state !== "idle"));
}

function noteUpstream(card, upstream) {
  var id = card.root.dataset.predictionId || card.client.state.id;
  if (upstream.state === "degraded") {
    degradedPredictions.set(id, upstream);
  } else {
    degradedPredictions.delete(id);
  }
  renderUpstreamNotice();
}

/** One plain sentence, naming the emulator when it is the emulator, with a countdown that moves. */
function renderUpstreamNotice() {
  var latest = null;
  degradedPredictions.forEach(function (upstream) { latest = upstream; });
  if (upstreamTimer !== null) {
    window.clearTimeout(upstreamTimer);
    upstreamTimer = null;
  }
  if (!latest) {
    dom.upstream.hidden = true;
    dom.upstream.textContent = "";
    return;
  }
  if (latest !== upstreamShown) {
    upstreamShown = latest;
    upstreamRetryAt = typeof latest.retryIn === "number" ? Date.now() + latest.retryIn * 1000 : null;
  }
  var who = config.backend === "emulator" ? "The emulator" : "Replicate";
  var left = upstreamRetryAt === null ? 0 : Math.ceil((upstreamRetryAt - Date.now()) / 1000);
  var when = left > 0 ? "; Relay tries again in " + left + (left === 1 ? " second" : " seconds")
    : "; Relay is trying again";
  dom.upstream.textContent = who + " is not answering right now" + when + ", and your predictions keep running.";
  dom.upstream.hidden = false;
  if (left > 0) upstreamTimer = window.setTimeout(renderUpstreamNotice, 1000);
}

/* ---------------- start ---------------- */

dom.form.addEventListener("submit", submitPrediction);
dom.retry.addEventListener("click", function () { multiplex.reconnectNow(); });
dom.model.addEventListener("change", function () {
  var model = controls.findModel(models, dom.model.value);
  if (model) selectModel(model);
});
controls.submitOnCtrlEnter(dom.prompt, dom.form);
window.addEventListener("online", function () { showConnection(lastConnection); });
window.addEventListener("offline", function () { showConnection(lastConnection); });
loadModels();
