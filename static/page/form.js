/*
 * A model's form, built from its Input schema (GET /api/models: inputs, editable,
 * default_input). An ES module with no state of its own:
 *
 *   fieldSpecs(model)               pure: one description per editable input, in x-order
 *   renderFields(container, model)  the controls, labelled, with help text; optional ones
 *                                   folded under "More options"; defaults filled in
 *   readFields(container, model)    the input object the controls hold (ints stay ints)
 *   markInvalid(container, field, message)   an error tied to its control, focus moved there
 *   clearInvalid(container)
 *   uploadFile(apiRoot, file)       POST /api/uploads → the URL to pass as a file input
 *
 * Controls: a select for choices (enum), a number input with min/max/step for numbers,
 * a checkbox for booleans, a text area for the prompt and long strings, a file picker
 * (plus a URL box) for `format: uri` inputs, a text box for other strings.
 */

var LONG_TEXT = /prompt|text|instruction|message|question|caption|description/i;

/** "num_inference_steps" → "Num inference steps", for inputs without a title. */
export function readable(name) {
  var words = String(name).replace(/[_-]+/g, " ").trim();
  return words ? words.charAt(0).toUpperCase() + words.slice(1) : String(name);
}

function controlFor(name, prop) {
  if (Array.isArray(prop.enum) && prop.enum.length) return "select";
  if (prop.type === "boolean") return "checkbox";
  if (prop.type === "integer" || prop.type === "number") return "number";
  if (prop.type === "string" && prop.format === "uri") return "file";
  if (prop.type === "string" && (LONG_TEXT.test(name) || (prop.maxLength || 0) > 200)) return "textarea";
  if (prop.type === "string" || prop.type === undefined) return "text";
  return "json";
}

/** One description per editable input, in x-order: what renderFields draws and readFields reads. */
export function fieldSpecs(model) {
  var schema = (model && model.inputs) || {};
  var props = schema.properties || {};
  var required = new Set(schema.required || []);
  var editable = model && Array.isArray(model.editable) ? model.editable : Object.keys(props);
  var defaults = (model && model.default_input) || {};
  var names = editable.filter(function (name) { return props[name]; });
  names.sort(function (a, b) {
    var oa = props[a]["x-order"], ob = props[b]["x-order"];
    oa = typeof oa === "number" ? oa : 1e6;
    ob = typeof ob === "number" ? ob : 1e6;
    return oa - ob || (a < b ? -1 : a > b ? 1 : 0);
  });
  return names.map(function (name) {
    var prop = props[name];
    var control = controlFor(name, prop);
    var spec = {
      name: name,
      label: typeof prop.title === "string" && prop.title.trim() ? prop.title.trim() : readable(name),
      help: typeof prop.description === "string" ? prop.description : "",
      control: control,
      type: prop.type || "string",
      required: required.has(name),
      // Required inputs and the prompt stay in view; the rest fold under "More options".
      optional: !required.has(name) && name !== "prompt",
      value: name in defaults ? defaults[name] : prop.default,
    };
    if (control === "select") spec.options = prop.enum.slice();
    if (control === "number") {
      if (typeof prop.minimum === "number") spec.min = prop.minimum;
      if (typeof prop.maximum === "number") spec.max = prop.maximum;
      spec.step = prop.type === "integer" ? 1 : "any";
    }
    return spec;
  });
}

function fieldId(name) {
  return "input-" + name;
}

function buildControl(doc, spec, onUpload) {
  var input;
  if (spec.control === "select") {
    input = doc.createElement("select");
    spec.options.forEach(function (choice) {
      var option = doc.createElement("option");
      option.value = String(choice);
      option.textContent = String(choice);
      if (spec.value !== undefined && String(spec.value) === String(choice)) option.selected = true;
      input.appendChild(option);
    });
  } else if (spec.control === "textarea" || spec.control === "json") {
    input = doc.createElement("textarea");
    input.rows = spec.control === "json" ? 3 : 3;
    if (spec.value !== undefined && spec.value !== null) {
      input.value = spec.control === "json" ? JSON.stringify(spec.value) : String(spec.value);
    }
  } else {
    input = doc.createElement("input");
    if (spec.control === "checkbox") {
      input.type = "checkbox";
      input.checked = spec.value === true;
    } else if (spec.control === "number") {
      input.type = "number";
      if (spec.min !== undefined) input.min = String(spec.min);
      if (spec.max !== undefined) input.max = String(spec.max);
      input.step = String(spec.step);
      if (typeof spec.value === "number") input.value = String(spec.value);
    } else {
      input.type = spec.control === "file" ? "url" : "text";
      if (typeof spec.value === "string") input.value = spec.value;
      if (spec.control === "file") input.placeholder = "https://… or choose a file";
    }
  }
  input.id = fieldId(spec.name);
  input.name = spec.name;
  input.dataset.inputKey = spec.name;
  input.dataset.inputControl = spec.control;
  input.dataset.inputType = spec.type;
  if (spec.required && spec.control !== "checkbox") input.required = true;
  return input;
}

function buildField(doc, spec, onUpload) {
  var wrapper = doc.createElement("div");
  wrapper.className = spec.control === "checkbox" ? "field field-check" : "field";
  wrapper.dataset.field = spec.name;
  var input = buildControl(doc, spec, onUpload);
  var label = doc.createElement("label");
  label.htmlFor = input.id;
  label.textContent = spec.label;
  var described = [];
  if (spec.control === "checkbox") wrapper.append(input, label);
  else wrapper.append(label, input);
  if (spec.control === "file") {
    var picker = doc.createElement("input");
    picker.type = "file";
    picker.id = input.id + "-file";
    picker.setAttribute("aria-label", "Upload a file for " + spec.label);
    picker.addEventListener("change", function () {
      var file = picker.files && picker.files[0];
      if (!file || !onUpload) return;
      input.value = "";
      input.placeholder = "Uploading " + file.name + "…";
      onUpload(file).then(function (url) {
        input.value = url;
        input.placeholder = "https://… or choose a file";
      }, function (error) {
        input.placeholder = "https://… or choose a file";
        markField(wrapper, input, (error && error.message) || "The file could not be uploaded.", true);
      });
    });
    wrapper.appendChild(picker);
  }
  if (spec.help) {
    var help = doc.createElement("small");
    help.className = "field-help";
    help.id = input.id + "-help";
    help.textContent = spec.help;
    wrapper.appendChild(help);
    described.push(help.id);
  }
  if (described.length) input.setAttribute("aria-describedby", described.join(" "));
  return wrapper;
}

/**
 * Draw the model's editable inputs into `container` (emptied first). `options.skip`
 * lists names drawn elsewhere; `options.onUpload(file)` returns a promise of a URL;
 * `options.fold: false` keeps optional inputs in view (the widget shows only the
 * inputs its host chose).
 */
export function renderFields(container, model, options) {
  var doc = container.ownerDocument;
  var opts = options || {};
  var skip = new Set(opts.skip || []);
  var onUpload = opts.onUpload || function (file) { return uploadFile(opts.apiRoot || "", file); };
  container.textContent = "";
  var more = null;
  fieldSpecs(model).forEach(function (spec) {
    if (skip.has(spec.name)) return;
    var field = buildField(doc, spec, onUpload);
    if (!spec.optional || opts.fold === false) {
      container.appendChild(field);
      return;
    }
    if (!more) {
      more = doc.createElement("details");
      more.className = "more-options";
      var summary = doc.createElement("summary");
      summary.textContent = "More options";
      more.appendChild(summary);
    }
    more.appendChild(field);
  });
  if (more) container.appendChild(more);
}

/** Convert one control's value; `undefined` leaves the input out (empty and optional). */
export function valueOf(spec, raw, checked) {
  if (spec.control === "checkbox") return Boolean(checked);
  if (spec.control === "number") {
    if (raw === "" || raw === null || raw === undefined) return undefined;
    var number = Number(raw);
    if (!Number.isFinite(number)) return raw; // the server names the field
    return spec.type === "integer" && Number.isInteger(number) ? Math.trunc(number) : number;
  }
  if (spec.control === "json") {
    if (raw === "") return undefined;
    try { return JSON.parse(raw); } catch (e) { return raw; }
  }
  if (spec.control === "select") {
    var typed = spec.options.filter(function (choice) { return String(choice) === raw; });
    return typed.length ? typed[0] : raw;
  }
  if (raw === "" && !spec.required) return undefined;
  return raw;
}

/** The input object the controls in `container` hold. */
export function readFields(container, model) {
  var result = {};
  fieldSpecs(model).forEach(function (spec) {
    var input = container.querySelector("#" + fieldId(spec.name));
    if (!input) return;
    var value = valueOf(spec, input.value, input.checked);
    if (value !== undefined) result[spec.name] = value;
  });
  return result;
}

function markField(wrapper, input, message, keepFocus) {
  var doc = wrapper.ownerDocument;
  var error = wrapper.querySelector(".field-error");
  if (!error) {
    error = doc.createElement("p");
    error.className = "field-error";
    error.id = input.id + "-error";
    wrapper.appendChild(error);
  }
  error.textContent = message;
  input.setAttribute("aria-invalid", "true");
  var ids = (input.getAttribute("aria-describedby") || "").split(" ").filter(Boolean);
  if (ids.indexOf(error.id) < 0) ids.unshift(error.id);
  input.setAttribute("aria-describedby", ids.join(" "));
  if (!keepFocus) input.focus();
}

/** Show the server's invalid_input on its field: aria-invalid, the message tied to it, focus there. */
export function markInvalid(container, field, message) {
  var input = container.querySelector("#" + fieldId(field))
    || container.querySelector('[name="' + String(field).replace(/["\\]/g, "") + '"]');
  if (!input) return false;
  var wrapper = input.closest(".field") || input.parentNode;
  var details = input.closest("details");
  if (details) details.open = true;
  markField(wrapper, input, message, false);
  return true;
}

export function clearInvalid(container) {
  container.querySelectorAll("[aria-invalid]").forEach(function (input) {
    input.removeAttribute("aria-invalid");
    var ids = (input.getAttribute("aria-describedby") || "").split(" ").filter(function (id) {
      return id && id !== input.id + "-error";
    });
    if (ids.length) input.setAttribute("aria-describedby", ids.join(" "));
    else input.removeAttribute("aria-describedby");
  });
  container.querySelectorAll(".field-error").forEach(function (node) { node.remove(); });
}

/** Upload one file; resolves to the URL to pass as a file input, rejects with the server's sentence. */
export function uploadFile(apiRoot, file, fetchImpl) {
  var doFetch = fetchImpl || globalThis.fetch.bind(globalThis);
  var body = new FormData();
  body.append("file", file, file.name || "upload");
  return doFetch(apiRoot + "/api/uploads", { method: "POST", body: body, credentials: "same-origin" })
    .then(function (response) {
      return response.json().catch(function () { return {}; }).then(function (data) {
        if (!response.ok || !data || typeof data.url !== "string") {
          throw new Error((data && data.error) || "The file could not be uploaded (HTTP " + response.status + ").");
        }
        return data.url;
      });
    });
}
