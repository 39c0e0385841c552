/*
 * The widget at /embed: one prompt, one prediction card, and reports to the
 * page that frames it. The card is drawn by relay-card.js and the input fields
 * by relay-controls.js, the same code as the page's.
 *
 * Reports go out with postMessage to exactly one origin, the parent's, and only
 * when that origin may frame the widget (data-parent-origins, from
 * RELAY_EMBED_ORIGINS) or is Relay's own. The parent's origin comes from
 * location.ancestorOrigins (Chromium, Safari), else document.referrer, else a
 * "hello" the host snippet sends after the iframe loads (its event.origin is
 * set by the browser, so it cannot lie). Messages sent before the origin is
 * known wait in a short outbox.
 *
 * Widget -> host: {source: "relay-embed", version: 1, frame, type, ...}
 *   type "ready"    {height, snapshot}  answer to hello (snapshot may be null)
 *   type "resize"   {height}            the content's height in CSS pixels
 *   type "status"   {snapshot}          the status changed
 *   type "progress" {snapshot}          the progress changed (never backwards)
 *   type "done"     {snapshot}          succeeded, failed or canceled
 *   type "error"    {snapshot}          snapshot.error is a sentence to show, snapshot.code
 *                                       Relay's code when a request was refused (grant_required)
 * Host -> widget: {source: "relay-host", version: 1, frame, type: "hello", grant?}
 *                 {source: "relay-host", version: 1, frame, type: "grant", grant}  (a fresh grant)
 *
 * Grants (RELAY_GRANT_SECRET): the host's grant never travels in the widget's URL
 * (which servers and proxies log). The snippet marks the URL's fragment with
 * `#grant` (fragments are never sent to a server) and hands the grant over with
 * postMessage after the frame loads, checked like the hello; until it arrives,
 * a create (autostart or Generate) waits. Creates then carry it as
 * `Authorization: Relay-Grant <grant>` (RelayClient's `grant` option).
 */
import * as RelayCard from "./page/card.js";
import * as controls from "./page/controls.js";
import * as form from "./page/form.js";

var PROTOCOL = 1;
var OUTBOX_LIMIT = 50;
var TERMINAL = { succeeded: true, failed: true, canceled: true };

var root = document.getElementById("relay-embed");
var config = readConfig(root);
var parentWindow = window.parent !== window ? window.parent : null;
var parentOrigin = null;
var outbox = [];
var lastHeight = -1;
var latestSnapshot = null;
var dom = {
  form: document.getElementById("embed-form"),
  model: document.getElementById("model"),
  prompt: document.getElementById("prompt"),
  inputs: document.getElementById("model-inputs"),
  generate: document.getElementById("generate"),
  formError: document.getElementById("form-error"),
  badge: document.getElementById("connection-badge"),
  cardSlot: document.getElementById("embed-card"),
  cardTemplate: document.getElementById("card-template"),
};
var card = null;
var grant = null;
var waitingForGrant = false;

function readConfig(element) {
  var origins = (element.getAttribute("data-parent-origins") || "").split(/\s+/).filter(Boolean);
  // Relay's own pages may always frame the widget (frame-ancestors 'self').
  origins.push(window.location.origin);
  return Object.assign(controls.readPageSettings(element), {
    allowedOrigins: origins,
    frame: element.getAttribute("data-frame") || "",
    model: element.getAttribute("data-model") || "",
    autostart: element.getAttribute("data-autostart") === "1",
    editable: (element.getAttribute("data-editable") || "").split(",").filter(Boolean),
    models: parseJson(element.getAttribute("data-models"), []),
    presetInput: parseJson(element.getAttribute("data-preset-input"), {}),
    problems: element.getAttribute("data-problems") || "",
  });
}

function parseJson(text, fallback) {
  try {
    var value = JSON.parse(text || "");
    return value === null || value === undefined ? fallback : value;
  } catch (err) {
    return fallback;
  }
}

/* ---------------- talking to the host page ---------------- */

function originAllowed(origin) {
  return typeof origin === "string" && origin !== "null" && config.allowedOrigins.indexOf(origin) >= 0;
}

function discoverParentOrigin() {
  if (!parentWindow) return null;
  var ancestors = window.location.ancestorOrigins;
  var candidate = null;
  if (ancestors && ancestors.length > 0) {
    candidate = ancestors[0];
  } else if (document.referrer) {
    try { candidate = new URL(document.referrer).origin; } catch (err) { candidate = null; }
  }
  return originAllowed(candidate) ? candidate : null;
}

function post(type, fields) {
  if (!parentWindow) return;
  var message = Object.assign({ source: "relay-embed", version: PROTOCOL, frame: config.frame, type: type },
    fields || {});
  if (!parentOrigin) {
    outbox.push(message);
    if (outbox.length > OUTBOX_LIMIT) outbox.shift();
    return;
  }
  parentWindow.postMessage(message, parentOrigin);
}

function isFromHost(event) {
  var data = event.data;
  return event.source === parentWindow && parentWindow !== null && originAllowed(event.origin)
    && data !== null && typeof data === "object" && data.source === "relay-host"
    && data.version === PROTOCOL && (data.type === "hello" || data.type === "grant")
    && (config.frame === "" || data.frame === config.frame);
}

/** Whether the host said (with `#grant` in the frame's URL) that a grant will come by message. */
function expectsGrant() {
  return new URLSearchParams(window.location.hash.slice(1)).has("grant");
}

function takeGrant(value) {
  if (typeof value !== "string" || value === "") return;
  grant = value;
  if (waitingForGrant) {
    waitingForGrant = false;
    submit(null);
  }
}

function onMessage(event) {
  if (!isFromHost(event)) return;
  takeGrant(event.data.grant);
  if (event.data.type !== "hello") return;
  parentOrigin = event.origin;
  lastHeight = contentHeight();
  post("ready", { height: lastHeight, snapshot: latestSnapshot });
  var waiting = outbox;
  outbox = [];
  waiting.forEach(function (message) { parentWindow.postMessage(message, parentOrigin); });
}

/** The content's height: the widget's element and the body's margins around it, not the frame's viewport. */
function contentHeight() {
  var style = window.getComputedStyle(document.body);
  var margins = (parseFloat(style.marginTop) || 0) + (parseFloat(style.marginBottom) || 0);
  return Math.ceil(root.getBoundingClientRect().height + margins);
}

function reportHeight() {
  var height = contentHeight();
  if (height === lastHeight) return;
  lastHeight = height;
  post("resize", { height: height });
}

/** A snapshot-shaped object for moments with no server snapshot yet (a refused POST, bad parameters). */
function standInSnapshot(fields) {
  return Object.assign({
    id: card && card.client ? card.client.state.id : null,
    status: card && card.client ? card.client.status : null,
    output: null, error: null, logs: "", progress: null, metrics: null,
    created_at: null, started_at: null, completed_at: null,
  }, fields || {});
}

function remember(snapshot) {
  latestSnapshot = snapshot;
  return snapshot;
}

/* ---------------- the form ---------------- */

/** The input a model starts from: the host's presets for the preset model, the sample input otherwise. */
function baseInput(model) {
  var base = Object.assign({}, model.default_input || {});
  delete base.prompt;
  if (model.name === config.model) Object.assign(base, config.presetInput);
  return base;
}

/** A field for each input the host lets visitors change; the model picker and the prompt are in the markup. */
function renderInputs() {
  var model = controls.findModel(config.models, dom.model.value);
  var keys = config.editable.filter(function (key) { return key !== "model"; });
  if (model) {
    form.renderFields(dom.inputs, shownModel(model, keys), { skip: ["prompt"], apiRoot: config.apiRoot, fold: false });
  } else {
    dom.inputs.innerHTML = "";
  }
}

/** The model as the form draws it (page/form.js): the inputs the host lets visitors change, its presets. */
function shownModel(model, keys) {
  var editable = (model.editable || Object.keys((model.inputs && model.inputs.properties) || {}))
    .filter(function (key) { return keys.indexOf(key) >= 0; });
  return Object.assign({}, model, { editable: editable, default_input: baseInput(model) });
}

function readInput(model) {
  var keys = config.editable.filter(function (key) { return key !== "model"; });
  var input = Object.assign(baseInput(model), form.readFields(dom.inputs, shownModel(model, keys)));
  input.prompt = dom.prompt.value;
  return input;
}

function submit(event) {
  if (event) event.preventDefault();
  if (controls.isBusy(dom.generate)) return;
  if (grant === null && expectsGrant()) {
    waitingForGrant = true;  // takeGrant() submits once the host's grant arrives
    return;
  }
  var model = controls.findModel(config.models, dom.model.value);
  if (!model) return;
  var input;
  try {
    input = readInput(model);
  } catch (err) {
    controls.showFormError(dom.formError, err.message);
    return;
  }
  controls.clearFormError(dom.formError);
  form.clearInvalid(dom.form);
  startPrediction(model, input);
}

/* ---------------- the card ---------------- */

/** One prediction at a time: a new one replaces the card, and Generate waits until it ends. */
function startPrediction(model, input) {
  if (card) card.client.close();
  card = createCard(model, input);
  dom.cardSlot.innerHTML = "";
  dom.cardSlot.appendChild(card.root);
  controls.setBusy(dom.generate, true);
  card.client.start(model.name, input).catch(function (err) {
    // invalid_input names its field: mark it when the widget shows it (page/form.js).
    if (!(err.field && form.markInvalid(dom.form, err.field, err.message))) {
      controls.showFormError(dom.formError, err.message);
    }
  });
}

/** relay-card.js draws the card; what is added here is the reporting to the host page. */
function createCard(model, input) {
  var created = RelayCard.create(dom.cardTemplate, model, input, "embed-card");
  created.nextFocus = dom.generate;
  created.reportedDone = false;
  RelayCard.follow(created, {
    apiRoot: config.apiRoot,
    grant: grant || undefined,
    heartbeatMs: config.heartbeatMs,
    onStatus: reportStatus,
    onProgress: reportProgress,
    onConnection: function (info) { controls.showConnection(dom.badge, info); },
    onState: function (state) { onState(created, state); },
    onError: function (error) { onError(created, error); },
  });
  return created;
}

function reportStatus(status, snapshot) {
  post("status", { snapshot: remember(snapshot || standInSnapshot({ status: status })) });
}

function reportProgress(progress, snapshot) {
  // The client's progress, not the raw snapshot's: it never goes backwards and is 100 on success.
  post("progress", { snapshot: remember(Object.assign({}, snapshot, { progress: progress })) });
}

function onState(target, state) {
  if (state.phase === "submitting") return;
  if (target === card) controls.setBusy(dom.generate, !RelayCard.isFinished(state.phase));
  if (TERMINAL[state.phase] && !target.reportedDone) {
    target.reportedDone = true;
    // After a bare `done` event the last snapshot still says "processing": the status comes from the state.
    var snapshot = Object.assign({}, target.client.snapshot || standInSnapshot(), { status: state.status },
      target.client.progress ? { progress: target.client.progress } : {});
    post("done", { snapshot: remember(snapshot) });
  }
}

function onError(target, error) {
  if (error.kind === "request") {
    // The POST was refused: no prediction exists, so the card has nothing to show.
    target.root.remove();
    controls.setBusy(dom.generate, false);
  }
  var snapshot = target.client.snapshot || standInSnapshot();
  // `code` lets the host act on a refusal, e.g. fetch a fresh grant after grant_required.
  post("error", { snapshot: remember(Object.assign({}, snapshot,
    { error: snapshot.error || error.message, code: error.code || null })) });
}

/* ---------------- start ---------------- */

/**
 * The height follows every change of the content: a ResizeObserver on the
 * widget's own element (the document's box can be held at the iframe's
 * height), and each image's load, which changes the height after layout.
 */
function watchHeight() {
  if (typeof ResizeObserver === "function") {
    var observer = new ResizeObserver(reportHeight);
    observer.observe(root);
    observer.observe(document.body);
  }
  window.addEventListener("load", reportHeight);
  window.addEventListener("resize", reportHeight);
  // load and error do not bubble; capturing them on the document sees every <img>.
  document.addEventListener("load", reportHeight, true);
  document.addEventListener("error", reportHeight, true);
  reportHeight();
}

/** Autostart only inside a frame: a top-level visit (a link, window.open) must not spend anything. */
function isFramed() {
  try {
    return window.top !== window.self;
  } catch (err) {
    return true;  // a cross-origin top throws on access in some browsers: that is a frame
  }
}

function start() {
  parentOrigin = discoverParentOrigin();
  window.addEventListener("message", onMessage);
  // The snippet sizes the iframe to the content, so the widget never needs its own scrollbar.
  if (parentWindow && config.frame) document.documentElement.classList.add("is-sized-by-host");
  watchHeight();

  if (config.problems) {
    post("error", { snapshot: remember(standInSnapshot({ error: config.problems })) });
    return;
  }
  dom.form.addEventListener("submit", submit);
  dom.model.addEventListener("change", renderInputs);
  controls.submitOnCtrlEnter(dom.prompt, dom.form);
  renderInputs();
  if (config.autostart && isFramed()) submit(null);
}

start();
