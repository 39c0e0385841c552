/*
 * The page: a form that starts predictions and one card per prediction.
 * Every card is followed over one shared /api/events connection (a browser
 * gives a host only about six), through RelayClient from relay-client.js.
 */
(function () {
  "use strict";

  var RelayClient = window.RelayClient;
  var app = document.getElementById("relay-app");
  var config = readConfig(app);
  var dom = {
    form: document.getElementById("prediction-form"),
    model: document.getElementById("model"),
    prompt: document.getElementById("prompt"),
    inputs: document.getElementById("model-inputs"),
    extra: document.getElementById("extra-input"),
    generate: document.getElementById("generate"),
    formError: document.getElementById("form-error"),
    badge: document.getElementById("connection-badge"),
    upstream: document.getElementById("upstream-notice"),
    cards: document.getElementById("cards"),
    emptyHint: document.getElementById("empty-hint"),
    cardTemplate: document.getElementById("card-template"),
  };
  var models = [];
  var currentModel = null;
  var cardCount = 0;
  var degradedPredictions = new Map();
  var lastConnection = { state: "idle", attempt: 0, nextRetryAt: null };
  var multiplex = new RelayClient.Multiplex({
    apiRoot: config.apiRoot,
    heartbeatMs: config.heartbeatMs,
    onConnection: showConnection,
  });

  function readConfig(element) {
    var heartbeatMs = parseInt(element.getAttribute("data-heartbeat-ms"), 10);
    return {
      backend: element.getAttribute("data-backend") || "",
      heartbeatMs: heartbeatMs > 0 ? heartbeatMs : 15000,
      apiRoot: (element.getAttribute("data-api-root") || "").replace(/\/$/, ""),
    };
  }

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
        showFormError("Could not load the list of models. Reload the page to try again.");
      });
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

  function modelNamed(name) {
    for (var i = 0; i < models.length; i += 1) {
      if (models[i].name === name) return models[i];
    }
    return null;
  }

  function selectModel(model) {
    var previous = currentModel;
    currentModel = model;
    var defaults = model.default_input || {};
    var previousPrompt = previous && previous.default_input ? previous.default_input.prompt : undefined;
    var untouched = dom.prompt.value === "" || dom.prompt.value === previousPrompt;
    if (untouched && typeof defaults.prompt === "string") dom.prompt.value = defaults.prompt;
    renderModelInputs(defaults);
  }

  /** One field per default_input entry besides the prompt; the JSON box covers anything else. */
  function renderModelInputs(defaults) {
    dom.inputs.innerHTML = "";
    Object.keys(defaults).forEach(function (key) {
      if (key === "prompt") return;
      var field = fieldFor(key, defaults[key]);
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
    input.name = key;
    input.dataset.inputKey = key;
    input.dataset.inputType = type;
    if (type === "number") {
      input.type = "number";
      input.step = Number.isInteger(value) ? "1" : "any";
      input.inputMode = Number.isInteger(value) ? "numeric" : "decimal";
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
    label.textContent = labelFor(key);
    if (type === "boolean") {
      wrapper.append(input, label);
    } else {
      wrapper.append(label, input);
    }
    return wrapper;
  }

  function labelFor(key) {
    var words = key.replace(/_/g, " ");
    return words.charAt(0).toUpperCase() + words.slice(1);
  }

  /** The prediction's input from the form; throws an Error with a sentence for the person. */
  function readInput() {
    var input = {};
    var extra = readExtraInput();
    input.prompt = dom.prompt.value;
    dom.inputs.querySelectorAll("input[data-input-key]").forEach(function (field) {
      var key = field.dataset.inputKey;
      if (field.dataset.inputType === "boolean") {
        input[key] = field.checked;
      } else if (field.dataset.inputType === "number") {
        if (field.value.trim() === "") return;
        var number = Number(field.value);
        if (!isFinite(number)) throw new Error(labelFor(key) + " must be a number.");
        input[key] = number;
      } else {
        input[key] = field.value;
      }
    });
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
    if (dom.generate.disabled || !currentModel) return;
    clearFormError();
    var input;
    try {
      input = readInput();
    } catch (err) {
      showFormError(err.message);
      return;
    }
    setSubmitting(true);
    var card = createCard(currentModel, input);
    card.client.start(currentModel.name, input)
      .then(function () { showCard(card); })
      .catch(function (err) {
        card.client.close();
        showFormError(err.message);
      })
      .then(function () { setSubmitting(false); });
  }

  function setSubmitting(busy) {
    dom.generate.disabled = busy;
    if (busy) {
      dom.generate.setAttribute("aria-busy", "true");
    } else {
      dom.generate.removeAttribute("aria-busy");
    }
  }

  function showFormError(message) {
    dom.formError.textContent = message;
    dom.formError.hidden = false;
  }

  function clearFormError() {
    dom.formError.hidden = true;
    dom.formError.textContent = "";
  }

  /* ---------------- cards ---------------- */

  /** A card for one prediction, kept out of the page until its POST succeeds. */
  function createCard(model, input) {
    cardCount += 1;
    var root = dom.cardTemplate.content.firstElementChild.cloneNode(true);
    var card = {
      root: root,
      model: model,
      input: input,
      prompt: typeof input.prompt === "string" ? input.prompt : "",
      status: root.querySelector(".card-status"),
      bar: root.querySelector(".progress"),
      fill: root.querySelector(".progress-fill"),
      progressText: root.querySelector(".progress-text"),
      output: root.querySelector(".card-output"),
      error: root.querySelector(".card-error"),
      logsPanel: root.querySelector(".card-logs"),
      logs: root.querySelector(".logs-text"),
      cancel: root.querySelector(".card-cancel"),
      remove: root.querySelector(".card-remove"),
      textOutput: null,
      imageUrls: null,
      progress: null,
      estimated: false,
      tokenCount: 0,
      client: null,
    };
    labelCard(card, cardCount);
    prepareOutput(card);
    setProgress(card, 0);
    card.client = new RelayClient({
      apiRoot: config.apiRoot,
      heartbeatMs: config.heartbeatMs,
      multiplex: multiplex,
      onStatus: function (status) { renderStatus(card, status); },
      onProgress: function (progress) { renderProgress(card, progress); },
      onOutput: function (output) { renderOutput(card, output); },
      onLogs: function (logs) { renderLogs(card, logs); },
      onUpstream: function (upstream) { noteUpstream(card, upstream); },
      onState: function (state) { renderPhase(card, state); },
      onError: function (error) { renderCardError(card, error); },
    });
    card.cancel.addEventListener("click", function () { cancelCard(card); });
    card.remove.addEventListener("click", function () { removeCard(card); });
    card.logsPanel.addEventListener("toggle", function () { scrollLogsToEnd(card); });
    return card;
  }

  function labelCard(card, number) {
    var title = card.root.querySelector(".card-model");
    var prompt = card.root.querySelector(".card-prompt");
    title.id = "card-" + number + "-model";
    prompt.id = "card-" + number + "-prompt";
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

  function showCard(card) {
    dom.cards.prepend(card.root);
    dom.emptyHint.hidden = true;
  }

  function cancelCard(card) {
    card.cancel.disabled = true;
    card.client.cancel().catch(function (err) {
      card.cancel.disabled = false;
      showCardError(card, err.message);
    });
  }

  function removeCard(card) {
    var next = card.root.nextElementSibling || card.root.previousElementSibling;
    card.client.close();
    degradedPredictions.delete(card.root.dataset.predictionId);
    renderUpstreamNotice();
    card.root.remove();
    dom.emptyHint.hidden = dom.cards.children.length > 0;
    var focusTarget = next ? next.querySelector("button:not([hidden])") : null;
    (focusTarget || dom.generate).focus();
  }

  var STATUS_LABELS = {
    starting: "Starting",
    processing: "Processing",
    succeeded: "Succeeded",
    failed: "Failed",
    canceled: "Canceled",
    aborted: "Aborted",
  };

  function renderStatus(card, status) {
    card.root.dataset.status = status;
    card.status.textContent = STATUS_LABELS[status] || status;
  }

  function renderPhase(card, state) {
    card.root.dataset.phase = state.phase;
    if (state.id) card.root.dataset.predictionId = state.id;
    var finished = state.phase === "succeeded" || state.phase === "failed"
      || state.phase === "canceled" || state.phase === "error";
    card.cancel.hidden = finished;
    card.remove.hidden = !finished;
    if (state.phase === "error") card.status.textContent = "Error";
    if (state.phase === "canceled") describeCancel(card);
  }

  function describeCancel(card) {
    var now = card.bar.getAttribute("aria-valuenow");
    card.progressText.textContent = "Canceled" + (now && now !== "0" ? " at " + now + "%" : "");
  }

  function setProgress(card, percent) {
    var clamped = Math.max(0, Math.min(100, percent));
    var rounded = Math.round(clamped);
    card.bar.setAttribute("aria-valuenow", String(rounded));
    card.fill.style.width = clamped + "%";
    return rounded;
  }

  function renderProgress(card, progress) {
    card.progress = progress;
    var measurable = typeof progress.percent === "number";
    card.bar.classList.toggle("is-indeterminate", !measurable);
    if (measurable) setProgress(card, progress.percent);
    refreshProgressText(card);
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
      parts.push("about " + formatDuration(progress.eta_seconds) + " left");
    }
    return parts;
  }

  function describeTokens(card) {
    var budget = card.input.max_tokens;
    var running = !card.root.dataset.status || card.root.dataset.status === "processing"
      || card.root.dataset.status === "starting";
    if (running && typeof budget === "number") return card.tokenCount + " of up to " + budget + " tokens";
    return card.tokenCount + (card.tokenCount === 1 ? " token" : " tokens");
  }

  function formatDuration(seconds) {
    var whole = Math.max(1, Math.round(seconds));
    if (whole < 60) return whole + " s";
    var minutes = Math.floor(whole / 60);
    var rest = whole % 60;
    return minutes + " min" + (rest ? " " + rest + " s" : "");
  }

  function renderOutput(card, output) {
    if (card.model.kind === "text") {
      renderText(card, output);
    } else if (imageUrlsOf(output.value)) {
      renderImages(card, imageUrlsOf(output.value));
    } else if (output.value !== null && output.value !== undefined) {
      renderRawOutput(card, output.value);
    }
  }

  function renderText(card, output) {
    if (output.text === null) return;
    card.textOutput.textContent = output.text;
    var tokens = Array.isArray(output.value) ? output.value.length : 0;
    card.tokenCount = output.delta ? card.tokenCount + 1 : Math.max(card.tokenCount, tokens);
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

  function imageUrlsOf(value) {
    var list = typeof value === "string" ? [value] : value;
    if (!Array.isArray(list) || list.length === 0) return null;
    var looksLikeUrl = function (item) {
      return typeof item === "string" && /^(https?:|data:image\/|\/)/.test(item);
    };
    return list.every(looksLikeUrl) ? list : null;
  }

  function renderImages(card, urls) {
    if (card.imageUrls && card.imageUrls.join("\n") === urls.join("\n")) return;
    card.imageUrls = urls;
    card.output.innerHTML = "";
    urls.forEach(function (url, index) {
      var figure = document.createElement("figure");
      var link = document.createElement("a");
      var image = document.createElement("img");
      link.href = url;
      link.target = "_blank";
      link.rel = "noopener";
      image.src = url;
      image.alt = "Generated image for: " + card.prompt + (urls.length > 1 ? " (" + (index + 1) + ")" : "");
      image.decoding = "async";
      link.appendChild(image);
      figure.appendChild(link);
      card.output.appendChild(figure);
    });
  }

  function renderRawOutput(card, value) {
    var pre = document.createElement("pre");
    pre.className = "raw-output";
    pre.textContent = typeof value === "string" ? value : JSON.stringify(value, null, 2);
    card.output.innerHTML = "";
    card.output.appendChild(pre);
  }

  /** Logs follow their tail unless the person scrolled up to read. */
  function renderLogs(card, logs) {
    var pre = card.logs;
    var atEnd = pre.scrollHeight - pre.scrollTop - pre.clientHeight < 24;
    pre.textContent = logs;
    if (atEnd) scrollLogsToEnd(card);
  }

  function scrollLogsToEnd(card) {
    card.logs.scrollTop = card.logs.scrollHeight;
  }

  function renderCardError(card, error) {
    if (error.kind === "request") return; // shown by the form instead
    showCardError(card, error.message);
  }

  function showCardError(card, message) {
    card.error.textContent = message;
    card.error.hidden = false;
  }

  /* ---------------- connection and upstream ---------------- */

  function showConnection(info) {
    lastConnection = info;
    var label = connectionLabel(info);
    dom.badge.textContent = label;
    dom.badge.setAttribute("aria-label", label);
    dom.badge.dataset.state = navigator.onLine === false ? "offline" : info.state;
  }

  function connectionLabel(info) {
    if (navigator.onLine === false) return "offline";
    switch (info.state) {
      case "open": return "connected";
      case "connecting": return "connecting";
      case "reconnecting": return info.attempt > 0 ? "reconnecting " + info.attempt : "reconnecting";
      case "offline":
      case "failed": return "offline";
      default: return "idle";
    }
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

  function renderUpstreamNotice() {
    var latest = null;
    degradedPredictions.forEach(function (upstream) { latest = upstream; });
    if (!latest) {
      dom.upstream.hidden = true;
      dom.upstream.textContent = "";
      return;
    }
    var retry = typeof latest.retryIn === "number" ? " Retrying in " + formatDuration(latest.retryIn) + "." : "";
    dom.upstream.textContent = "Upstream degraded: Replicate is not answering as it should"
      + (latest.error ? " (" + latest.error + ")" : "") + "." + retry
      + " Your predictions keep running.";
    dom.upstream.hidden = false;
  }

  /* ---------------- start ---------------- */

  dom.form.addEventListener("submit", submitPrediction);
  dom.model.addEventListener("change", function () {
    var model = modelNamed(dom.model.value);
    if (model) selectModel(model);
  });
  dom.prompt.addEventListener("keydown", function (event) {
    if (event.key === "Enter" && (event.ctrlKey || event.metaKey)) {
      event.preventDefault();
      dom.form.requestSubmit();
    }
  });
  window.addEventListener("online", function () { showConnection(lastConnection); });
  window.addEventListener("offline", function () { showConnection(lastConnection); });
  loadModels();
})();
