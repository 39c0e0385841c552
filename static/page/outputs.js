/*
 * A prediction's output shown by its kind (GET /api/models: kind), on the page and in
 * the widget. An ES module:
 *
 *   outputView(kind, output)          pure: what to show ({type: "images" | "video" |
 *                                     "audio" | "text" | "json" | "files", ...})
 *   renderOutput(container, view)     the elements: an image grid, <video controls>,
 *                                     <audio controls>, text as text (never HTML), a
 *                                     collapsible JSON view, links named by file name
 *   runTime(metrics)                  "Ran for 4.98 s" from metrics.predict_time, or ""
 *   renderFinished(container, view, metrics, copy)   Download or Copy, and the run time
 *
 * `kind` is a hint: a `file` model's outputs are still shown as images, video or audio
 * when their URLs say so.
 */

var IMAGE = /\.(png|jpe?g|webp|gif|bmp|avif)$/i;
var VIDEO = /\.(mp4|webm|mov|m4v)$/i;
var AUDIO = /\.(wav|mp3|ogg|flac|m4a|aac|opus)$/i;

function isUrl(value) {
  return typeof value === "string" && /^(https?:\/\/|data:|\/)/i.test(value);
}

function pathOf(url) {
  if (/^data:/i.test(url)) return "";
  return url.split("#")[0].split("?")[0];
}

/** The file name a URL ends with ("out-0.png"), or "output" for data: URLs. */
export function fileName(url) {
  var path = pathOf(url);
  var last = path.split("/").filter(Boolean).pop();
  if (!last) {
    var media = /^data:([\w.+-]+)\/([\w.+-]+)/i.exec(url);
    return media ? "output." + media[2] : "output";
  }
  try { return decodeURIComponent(last); } catch (e) { return last; }
}

function mediaOf(url) {
  var data = /^data:(image|video|audio)\//i.exec(url);
  if (data) return data[1].toLowerCase();
  var path = pathOf(url);
  if (IMAGE.test(path)) return "image";
  if (VIDEO.test(path)) return "video";
  if (AUDIO.test(path)) return "audio";
  return null;
}

function urlsOf(output) {
  var list = Array.isArray(output) ? output : [output];
  return list.length > 0 && list.every(isUrl) ? list : null;
}

/** What to show for an output of a model of `kind`. */
export function outputView(kind, output) {
  if (output === null || output === undefined) return null;
  if (kind === "text") {
    var text = Array.isArray(output) ? output.join("") : typeof output === "string" ? output : JSON.stringify(output);
    return { type: "text", text: text };
  }
  if (kind === "json" || (typeof output === "object" && !urlsOf(output))) {
    return { type: "json", value: output };
  }
  var urls = urlsOf(output);
  if (!urls) return { type: "text", text: String(output) };
  var kinds = urls.map(mediaOf);
  var first = kind === "image" || kind === "video" || kind === "audio" ? kind : kinds[0];
  var same = kinds.every(function (k) { return k === null || k === first; });
  if (first === "image" && same) return { type: "images", urls: urls };
  if (first === "video" && same) return { type: "video", urls: urls };
  if (first === "audio" && same) return { type: "audio", urls: urls };
  return { type: "files", urls: urls };
}

/** "Ran for 4.98 s" (or "1 min 3 s") from metrics.predict_time; "" without it. */
export function runTime(metrics) {
  var seconds = metrics && typeof metrics.predict_time === "number" ? metrics.predict_time : null;
  if (seconds === null || !Number.isFinite(seconds) || seconds < 0) return "";
  if (seconds < 60) return "Ran for " + (seconds < 10 ? seconds.toFixed(2) : seconds.toFixed(1)) + " s";
  var minutes = Math.floor(seconds / 60);
  var rest = Math.round(seconds - minutes * 60);
  return "Ran for " + minutes + " min" + (rest ? " " + rest + " s" : "");
}

/** The text a Copy button copies: the text itself, or the JSON pretty-printed. */
export function copyText(view) {
  if (!view) return "";
  if (view.type === "text") return view.text;
  if (view.type === "json") return JSON.stringify(view.value, null, 2);
  return (view.urls || []).join("\n");
}

function link(doc, url, text) {
  var a = doc.createElement("a");
  a.href = url;
  a.textContent = text;
  a.rel = "noopener";
  a.target = "_blank";
  return a;
}

function jsonNode(doc, value, key) {
  if (value === null || typeof value !== "object") {
    var leaf = doc.createElement("div");
    leaf.className = "json-leaf";
    leaf.textContent = (key !== undefined ? key + ": " : "") + JSON.stringify(value);
    return leaf;
  }
  var details = doc.createElement("details");
  details.open = true;
  details.className = "json-node";
  var summary = doc.createElement("summary");
  var count = Array.isArray(value) ? value.length + " items" : Object.keys(value).length + " keys";
  summary.textContent = (key !== undefined ? key + ": " : "") + (Array.isArray(value) ? "[" : "{") + " " + count;
  details.appendChild(summary);
  Object.keys(value).forEach(function (k) {
    details.appendChild(jsonNode(doc, value[k], Array.isArray(value) ? Number(k) : k));
  });
  return details;
}

/** Replace `container`'s content with the output. Text is set as text, never parsed as HTML. */
export function renderOutput(container, view) {
  var doc = container.ownerDocument;
  container.textContent = "";
  if (!view) return;
  container.dataset.outputType = view.type;
  if (view.type === "text") {
    var pre = doc.createElement("pre");
    pre.className = "output-text";
    pre.textContent = view.text;
    container.appendChild(pre);
  } else if (view.type === "json") {
    var tree = doc.createElement("div");
    tree.className = "output-json";
    tree.setAttribute("role", "tree");
    tree.appendChild(jsonNode(doc, view.value));
    container.appendChild(tree);
  } else if (view.type === "images") {
    var grid = doc.createElement("div");
    grid.className = "output-grid";
    view.urls.forEach(function (url, i) {
      var img = doc.createElement("img");
      img.src = url;
      img.alt = "Output image " + (i + 1) + " of " + view.urls.length;
      img.loading = "lazy";
      grid.appendChild(img);
    });
    container.appendChild(grid);
  } else if (view.type === "video" || view.type === "audio") {
    view.urls.forEach(function (url) {
      var media = doc.createElement(view.type);
      media.controls = true;
      media.preload = "metadata";
      media.src = url;
      container.appendChild(media);
    });
  } else {
    var list = doc.createElement("ul");
    list.className = "output-files";
    view.urls.forEach(function (url) {
      var item = doc.createElement("li");
      item.appendChild(link(doc, url, fileName(url)));
      list.appendChild(item);
    });
    container.appendChild(list);
  }
}

/**
 * The finished card's actions: Download for files, Copy for text and JSON, and the run
 * time. `copy(text)` defaults to the clipboard.
 */
export function renderFinished(container, view, metrics, copy) {
  var doc = container.ownerDocument;
  container.textContent = "";
  if (view && (view.type === "text" || view.type === "json")) {
    var button = doc.createElement("button");
    button.type = "button";
    button.className = "copy-output";
    button.textContent = "Copy";
    button.addEventListener("click", function () {
      var write = copy || function (text) { return navigator.clipboard.writeText(text); };
      Promise.resolve(write(copyText(view))).then(function () { button.textContent = "Copied"; },
        function () { button.textContent = "Copy failed"; });
    });
    container.appendChild(button);
  } else if (view && view.urls) {
    view.urls.forEach(function (url, i) {
      var a = link(doc, url, view.urls.length > 1 ? "Download " + (i + 1) : "Download");
      a.setAttribute("download", fileName(url));
      a.className = "download-output";
      container.appendChild(a);
    });
  }
  var time = runTime(metrics);
  if (time) {
    var span = doc.createElement("span");
    span.className = "run-time";
    span.textContent = time;
    container.appendChild(span);
  }
}
