/*
 * The controls the page (app.js) and the widget (embed.js) both put around
 * their cards: fields for a model's inputs, the form's error line, the
 * Generate button's busy state, Ctrl+Enter, and the connection badge.
 * An ES module; each piece is a named export.
 */

/** The settings every page's root element carries as data- attributes. */
export function readPageSettings(element) {
  var heartbeatMs = parseInt(element.getAttribute("data-heartbeat-ms"), 10);
  return {
    apiRoot: (element.getAttribute("data-api-root") || "").replace(/\/$/, ""),
    heartbeatMs: heartbeatMs > 0 ? heartbeatMs : 15000,
    backend: element.getAttribute("data-backend") || "",
  };
}

export function findModel(models, name) {
  for (var i = 0; i < models.length; i += 1) {
    if (models[i].name === name) return models[i];
  }
  return null;
}

/* ---------------- input fields ---------------- */

/** One field per key that `values` has; the prompt has its own box, so it gets none here. */
export function fillFields(container, values, keys) {
  container.innerHTML = "";
  keys.forEach(function (key) {
    if (key === "prompt" || !(key in values)) return;
    var field = fieldFor(key, values[key]);
    if (field) container.appendChild(field);
  });
}

/** A labelled input typed after the sample value; null for values a single input cannot hold. */
function fieldFor(key, value) {
  var type = typeof value;
  if (type !== "number" && type !== "string" && type !== "boolean") return null;
  var wrapper = document.createElement("div");
  wrapper.className = type === "boolean" ? "field field-check" : "field";
  var input = inputFor(key, value, type);
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

function inputFor(key, value, type) {
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
  return input;
}

function labelFor(key) {
  var words = key.replace(/_/g, " ");
  return words.charAt(0).toUpperCase() + words.slice(1);
}

/** Write the fields' values into `input` and return it; throws an Error with a sentence for the person. */
export function readFields(container, input) {
  container.querySelectorAll("input[data-input-key]").forEach(function (field) {
    var key = field.dataset.inputKey;
    if (field.dataset.inputType === "boolean") {
      input[key] = field.checked;
    } else if (field.dataset.inputType === "number") {
      // An emptied number box means "the model's default", not zero.
      if (field.value.trim() === "") return;
      var number = Number(field.value);
      if (!isFinite(number)) throw new Error(labelFor(key) + " must be a number.");
      input[key] = number;
    } else {
      input[key] = field.value;
    }
  });
  return input;
}

/* ---------------- the form around them ---------------- */

export function showFormError(element, message) {
  element.textContent = message;
  element.hidden = false;
}

export function clearFormError(element) {
  element.hidden = true;
  element.textContent = "";
}

/**
 * A busy button stays focusable (aria-disabled, not disabled), so focus never
 * drops to <body> while a request runs; its form's submit handler checks isBusy().
 */
export function setBusy(button, busy) {
  if (busy) {
    button.setAttribute("aria-disabled", "true");
    button.setAttribute("aria-busy", "true");
  } else {
    button.removeAttribute("aria-disabled");
    button.removeAttribute("aria-busy");
  }
}

export function isBusy(button) {
  return button.disabled || button.getAttribute("aria-disabled") === "true";
}

/** Ctrl+Enter (Cmd+Enter on a Mac) in the prompt submits, as in most chat and search boxes. */
export function submitOnCtrlEnter(textarea, form) {
  textarea.addEventListener("keydown", function (event) {
    if (event.key === "Enter" && (event.ctrlKey || event.metaKey)) {
      event.preventDefault();
      form.requestSubmit();
    }
  });
}

/* ---------------- the connection badge ---------------- */

/** The badge's text is also its accessible name, in plain words: "connected", "reconnecting", "offline". */
export function showConnection(badge, info) {
  var label = connectionLabel(info);
  badge.textContent = label;
  badge.setAttribute("aria-label", label);
  badge.dataset.state = navigator.onLine === false ? "offline" : info.state;
  badge.dataset.attempt = String(info.attempt || 0);
  return label;
}

function connectionLabel(info) {
  if (navigator.onLine === false) return "offline";
  switch (info.state) {
    case "open": return "connected";
    case "connecting": return "connecting";
    case "reconnecting": return "reconnecting";
    case "offline":
    case "failed": return "offline";
    default: return "idle";
  }
}
