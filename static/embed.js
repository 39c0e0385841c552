/*
 * The widget at /embed: one prompt, one prediction card, and reports to the
 * page that frames it.
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
 *   type "error"    {snapshot}          snapshot.error is a sentence to show
 * Host -> widget: {source: "relay-host", version: 1, frame, type: "hello"}
 */
(function () {
  "use strict";

  var PROTOCOL = 1;
  var OUTBOX_LIMIT = 50;
  var TERMINAL = { succeeded: true, failed: true, canceled: true };
  var STATUS_LABELS = {
    starting: "Starting",
    processing: "Processing",
    succeeded: "Succeeded",
    failed: "Failed",
    canceled: "Canceled",
    aborted: "Aborted",
  };

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

  function readConfig(element) {
    var heartbeatMs = parseInt(element.getAttribute("data-heartbeat-ms"), 10);
    var origins = (element.getAttribute("data-parent-origins") || "").split(/\s+/).filter(Boolean);
    // Relay's own pages may always frame the widget (frame-ancestors 'self').
    origins.push(window.location.origin);
    return {
      apiRoot: (element.getAttribute("data-api-root") || "").replace(/\/$/, ""),
      heartbeatMs: heartbeatMs > 0 ? heartbeatMs : 15000,
      allowedOrigins: origins,
      frame: element.getAttribute("data-frame") || "",
      model: element.getAttribute("data-model") || "",
      autostart: element.getAttribute("data-autostart") === "1",
      editable: (element.getAttribute("data-editable") || "").split(",").filter(Boolean),
      models: parseJson(element.getAttribute("data-models"), []),
      presetInput: parseJson(element.getAttribute("data-preset-input"), {}),
      problems: element.getAttribute("data-problems") || "",
    };
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

  function isHello(event) {
    var data = event.data;
    return event.source === parentWindow && parentWindow !== null && originAllowed(event.origin)
      && data !== null && typeof data === "object" && data.source === "relay-host"
      && data.version === PROTOCOL && data.type === "hello"
      && (config.frame === "" || data.frame === config.frame);
  }

  function onMessage(event) {
    if (!isHello(event)) return;
    parentOrigin = event.origin;
    lastHeight = contentHeight();
    post("ready", { height: lastHeight, snapshot: latestSnapshot });
    var waiting = outbox;
    outbox = [];
    waiting.forEach(function (message) { parentWindow.postMessage(message, parentOrigin); });
  }

  function contentHeight() {
    return Math.ceil(document.documentElement.getBoundingClientRect().height);
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

  function modelNamed(name) {
    for (var i = 0; i < config.models.length; i += 1) {
      if (config.models[i].name === name) return config.models[i];
    }
    return null;
  }

  /** The input a model starts from: the host's presets for the preset model, the sample input otherwise. */
  function baseInput(model) {
    var base = Object.assign({}, model.default_input || {});
    delete base.prompt;
    if (model.name === config.model) Object.assign(base, config.presetInput);
    return base;
  }

  /** A field for each input the host lets visitors change, besides model and prompt. */
  function renderInputs() {
    var model = modelNamed(dom.model.value);
    dom.inputs.innerHTML = "";
    if (!model) return;
    var base = baseInput(model);
    config.editable.forEach(function (key) {
      if (key === "model" || key === "prompt" || !(key in base)) return;
      var field = fieldFor(key, base[key]);
      if (field) dom.inputs.appendChild(field);
    });
  }

  function fieldFor(key, value) {
    var type = typeof value;
    if (type !== "number" && type !== "string" && type !== "boolean") return null;
    var wrapper = document.createElement("div");
    wrapper.className = type === "boolean" ? "field field-check" : "field";
    var input = document.createElement("input");
    input.id = "input-" + key;
    input.dataset.inputKey = key;
    input.dataset.inputType = type;
    if (type === "number") {
      input.type = "number";
      input.step = Number.isInteger(value) ? "1" : "any";
      input.value = String(value);
    } else if (type === "boolean") {
      input.type = "checkbox";
      input.checked = value;
    } else {
      input.type = "text";
      input.value = value;
    }
    var label = document.createElement("label");
    label.htmlFor = input.id;
    var words = key.replace(/_/g, " ");
    label.textContent = words.charAt(0).toUpperCase() + words.slice(1);
    if (type === "boolean") wrapper.append(input, label); else wrapper.append(label, input);
    return wrapper;
  }

  function readInput(model) {
    var input = baseInput(model);
    dom.inputs.querySelectorAll("input[data-input-key]").forEach(function (field) {
      var key = field.dataset.inputKey;
      if (field.dataset.inputType === "boolean") {
        input[key] = field.checked;
      } else if (field.dataset.inputType === "number") {
        if (field.value.trim() === "") return;
        var number = Number(field.value);
        if (!isFinite(number)) throw new Error(field.labels[0].textContent + " must be a number.");
        input[key] = number;
      } else {
        input[key] = field.value;
      }
    });
    input.prompt = dom.prompt.value;
    return input;
  }

  function submit(event) {
    if (event) event.preventDefault();
    if (dom.generate.disabled) return;
    var model = modelNamed(dom.model.value);
    if (!model) return;
    var input;
    try {
      input = readInput(model);
    } catch (err) {
      showFormError(err.message);
      return;
    }
    hideFormError();
    startPrediction(model, input);
  }

  function showFormError(message) {
    dom.formError.textContent = message;
    dom.formError.hidden = false;
  }

  function hideFormError() {
    dom.formError.hidden = true;
    dom.formError.textContent = "";
  }

  /* ---------------- the card ---------------- */

  function startPrediction(model, input) {
    if (card) card.client.close();
    card = createCard(model, input);
    dom.cardSlot.innerHTML = "";
    dom.cardSlot.appendChild(card.root);
    dom.generate.disabled = true;
    dom.generate.setAttribute("aria-busy", "true");
    card.client.start(model.name, input).catch(function (err) {
      showFormError(err.message);
    });
  }

  function createCard(model, input) {
    var root = dom.cardTemplate.content.firstElementChild.cloneNode(true);
    var prompt = typeof input.prompt === "string" ? input.prompt : "";
    var created = {
      root: root,
      model: model,
      prompt: prompt,
      status: root.querySelector(".card-status"),
      bar: root.querySelector(".progress"),
      fill: root.querySelector(".progress-fill"),
      progressText: root.querySelector(".progress-text"),
      output: root.querySelector(".card-output"),
      error: root.querySelector(".card-error"),
      logs: root.querySelector(".logs-text"),
      cancel: root.querySelector(".card-cancel"),
      textOutput: null,
      imageKey: null,
      reportedDone: false,
      client: null,
    };
    var title = root.querySelector(".card-model");
    var promptLine = root.querySelector(".card-prompt");
    title.id = "embed-card-model";
    promptLine.id = "embed-card-prompt";
    title.textContent = model.name;
    promptLine.textContent = prompt || "(no prompt)";
    root.setAttribute("aria-labelledby", title.id + " " + promptLine.id);
    if (model.kind === "text") {
      created.textOutput = document.createElement("p");
      created.textOutput.className = "text-output";
      created.textOutput.setAttribute("aria-live", "polite");
      created.output.appendChild(created.textOutput);
    }
    created.client = new window.RelayClient({
      apiRoot: config.apiRoot,
      heartbeatMs: config.heartbeatMs,
      onStatus: function (status, snapshot) { onStatus(created, status, snapshot); },
      onProgress: function (progress, snapshot) { onProgress(created, progress, snapshot); },
      onOutput: function (output) { renderOutput(created, output); },
      onLogs: function (logs) { created.logs.textContent = logs; },
      onConnection: showConnection,
      onState: function (state) { onState(created, state); },
      onError: function (error) { onError(created, error); },
    });
    created.cancel.addEventListener("click", function () {
      created.cancel.disabled = true;
      created.client.cancel().catch(function (err) {
        created.cancel.disabled = false;
        showCardError(created, err.message);
      });
    });
    return created;
  }

  function onStatus(target, status, snapshot) {
    target.root.dataset.status = status;
    target.status.textContent = STATUS_LABELS[status] || status;
    post("status", { snapshot: remember(snapshot || standInSnapshot({ status: status })) });
  }

  function onProgress(target, progress, snapshot) {
    var measurable = typeof progress.percent === "number";
    target.bar.classList.toggle("is-indeterminate", !measurable);
    if (measurable) {
      var percent = Math.max(0, Math.min(100, progress.percent));
      target.bar.setAttribute("aria-valuenow", String(Math.round(percent)));
      target.fill.style.width = percent + "%";
    }
    var text = describeProgress(target, progress);
    if (text) {
      target.progressText.textContent = text;
      target.bar.setAttribute("aria-valuetext", text);
    }
    // The client's progress, not the raw snapshot's: it never goes backwards and is 100 on success.
    post("progress", { snapshot: remember(Object.assign({}, snapshot, { progress: progress })) });
  }

  function describeProgress(target, progress) {
    var parts = [];
    if (typeof progress.percent === "number") parts.push(target.bar.getAttribute("aria-valuenow") + "%");
    if (typeof progress.current === "number" && typeof progress.total === "number") {
      parts.push("step " + progress.current + " of " + progress.total);
    }
    if (progress.step) parts.push(progress.step);
    if (typeof progress.eta_seconds === "number" && progress.eta_seconds > 0 && progress.percent < 100) {
      parts.push("about " + Math.max(1, Math.round(progress.eta_seconds)) + " s left");
    }
    return parts.join(" · ");
  }

  function onState(target, state) {
    target.root.dataset.phase = state.phase;
    if (state.id) target.root.dataset.predictionId = state.id;
    var finished = state.phase === "succeeded" || state.phase === "failed"
      || state.phase === "canceled" || state.phase === "error";
    target.cancel.hidden = finished;
    if (state.phase === "submitting") return;
    if (target === card) {
      dom.generate.disabled = !finished;
      if (finished) dom.generate.removeAttribute("aria-busy");
    }
    if (state.phase === "error") target.status.textContent = "Error";
    if (state.phase === "canceled") {
      var now = target.bar.getAttribute("aria-valuenow");
      target.progressText.textContent = "Canceled" + (now && now !== "0" ? " at " + now + "%" : "");
    }
    if (TERMINAL[state.phase] && !target.reportedDone) {
      target.reportedDone = true;
      // After a bare `done` event the last snapshot still says "processing": the status comes from the state.
      var snapshot = Object.assign({}, target.client.snapshot || standInSnapshot(), { status: state.status },
        target.client.progress ? { progress: target.client.progress } : {});
      post("done", { snapshot: remember(snapshot) });
    }
  }

  function onError(target, error) {
    if (error.kind !== "request") showCardError(target, error.message);
    if (error.kind === "request") {
      // The POST was refused: no prediction exists, so the card has nothing to show.
      target.root.remove();
      dom.generate.disabled = false;
      dom.generate.removeAttribute("aria-busy");
    }
    var snapshot = target.client.snapshot || standInSnapshot();
    post("error", { snapshot: remember(Object.assign({}, snapshot, { error: snapshot.error || error.message })) });
  }

  function showCardError(target, message) {
    target.error.textContent = message;
    target.error.hidden = false;
  }

  function renderOutput(target, output) {
    if (target.textOutput) {
      if (output.text !== null) target.textOutput.textContent = output.text;
      return;
    }
    var urls = imageUrlsOf(output.value);
    if (urls) {
      renderImages(target, urls);
    } else if (output.value !== null && output.value !== undefined) {
      var pre = document.createElement("pre");
      pre.className = "raw-output";
      pre.textContent = typeof output.value === "string" ? output.value : JSON.stringify(output.value, null, 2);
      target.output.innerHTML = "";
      target.output.appendChild(pre);
    }
  }

  function imageUrlsOf(value) {
    var list = typeof value === "string" ? [value] : value;
    if (!Array.isArray(list) || list.length === 0) return null;
    var looksLikeUrl = function (item) {
      return typeof item === "string" && /^(https?:|data:image\/|\/)/.test(item);
    };
    return list.every(looksLikeUrl) ? list : null;
  }

  function renderImages(target, urls) {
    var key = urls.join("\n");
    if (target.imageKey === key) return;
    target.imageKey = key;
    target.output.innerHTML = "";
    urls.forEach(function (url, index) {
      var link = document.createElement("a");
      var image = document.createElement("img");
      link.href = url;
      link.target = "_blank";
      link.rel = "noopener";
      image.src = url;
      image.alt = "Generated image for: " + target.prompt + (urls.length > 1 ? " (" + (index + 1) + ")" : "");
      image.decoding = "async";
      link.appendChild(image);
      target.output.appendChild(link);
    });
  }

  function showConnection(info) {
    if (!dom.badge) return;
    var labels = { open: "connected", connecting: "connecting", reconnecting: "reconnecting",
      offline: "offline", failed: "offline", closed: "idle" };
    var label = navigator.onLine === false ? "offline" : (labels[info.state] || "idle");
    dom.badge.textContent = label;
    dom.badge.setAttribute("aria-label", label);
    dom.badge.dataset.state = navigator.onLine === false ? "offline" : info.state;
  }

  /* ---------------- start ---------------- */

  parentOrigin = discoverParentOrigin();
  window.addEventListener("message", onMessage);
  // The snippet sizes the iframe to the content, so the widget never needs its own scrollbar.
  if (parentWindow && config.frame) document.documentElement.classList.add("is-sized-by-host");
  if (typeof ResizeObserver === "function") {
    new ResizeObserver(reportHeight).observe(document.documentElement);
  } else {
    window.addEventListener("load", reportHeight);
    window.addEventListener("resize", reportHeight);
  }
  reportHeight();

  if (config.problems) {
    post("error", { snapshot: remember(standInSnapshot({ error: config.problems })) });
    return;
  }
  dom.form.addEventListener("submit", submit);
  dom.model.addEventListener("change", renderInputs);
  dom.prompt.addEventListener("keydown", function (event) {
    if (event.key === "Enter" && (event.ctrlKey || event.metaKey)) submit(event);
  });
  renderInputs();
  if (config.autostart) submit(null);
})();
