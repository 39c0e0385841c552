/*
 * Relay's embed snippet: put Relay's widget (/embed) on any page.
 *
 *   <script src="https://relay.example.com/static/relay-embed.js" defer></script>
 *   <div id="relay"></div>
 *   RelayEmbed.mount(document.getElementById("relay"), {
 *     src: "https://relay.example.com",          // Relay's origin (a path prefix may follow)
 *     model: "relay/image-demo", prompt: "a fox", autostart: true, theme: "auto",
 *     editable: ["prompt"],                       // optional: what visitors may change
 *     input: {steps: 20},                         // optional: presets for other inputs
 *     grant: "eyJ…",                              // optional: a grant from your backend
 *   });
 *
 * or, with no script of your own: <div data-relay-src="https://relay.example.com"
 * data-model="…" data-prompt="…" data-autostart="1" data-theme="dark"
 * data-editable="prompt" data-input='{"steps": 20}' data-grant="eyJ…"></div>,
 * mounted when this script loads.
 *
 * A grant (when Relay has RELAY_GRANT_SECRET) is never put in the widget's URL,
 * which servers and proxies log: the URL's fragment only says `#grant` (a grant
 * is coming), and the grant itself goes to the iframe with postMessage, addressed
 * to Relay's origin, with the hello. handle.setGrant(grant) hands over a fresh
 * one (say, after the first expired) for the widget's next create.
 *
 * The iframe's height follows the widget's content. The element receives DOM
 * events (they bubble): relay:status, relay:progress, relay:done, relay:error,
 * each with the latest prediction snapshot as event.detail (on relay:error,
 * detail.error is a sentence to show and detail.code, when Relay refused a
 * request, its code: on grant_required, mint a fresh grant and call
 * handle.setGrant(grant)), and relay:ready when the widget first
 * answers. A widget that has not answered within a few seconds of its frame's
 * load was most likely refused by the browser (this page's origin is not in
 * Relay's RELAY_EMBED_ORIGINS, or localhost was used for 127.0.0.1): the
 * snippet then hides the broken frame, shows a sentence saying so, and
 * dispatches relay:error.
 *
 * Messages: this script sends {source: "relay-host", version: 1, frame, type:
 * "hello"} to the iframe, addressed to Relay's origin only; it accepts only
 * {source: "relay-embed", version: 1, frame, type, …} from that origin and from
 * that iframe's window, and ignores everything else.
 */
(function (global) {
  "use strict";

  var PROTOCOL = 1;
  var DOM_EVENTS = {
    ready: "relay:ready",
    status: "relay:status",
    progress: "relay:progress",
    done: "relay:done",
    error: "relay:error",
  };
  var MAX_HEIGHT = 20000;
  var READY_TIMEOUT_MS = 4000;
  var frames = Object.create(null);
  var mounted = 0;
  var listening = false;

  function isPlainObject(value) {
    return value !== null && typeof value === "object" && !Array.isArray(value);
  }

  function widgetUrl(base, options, frameId) {
    var params = new URLSearchParams();
    ["model", "prompt", "theme"].forEach(function (name) {
      if (options[name] !== undefined && options[name] !== null && options[name] !== "") {
        params.set(name, String(options[name]));
      }
    });
    if (options.autostart !== undefined && options.autostart !== null && options.autostart !== "") {
      params.set("autostart", typeof options.autostart === "boolean" ? (options.autostart ? "1" : "0")
        : String(options.autostart));
    }
    if (options.editable !== undefined && options.editable !== null) {
      params.set("editable", Array.isArray(options.editable) ? options.editable.join(",") : String(options.editable));
    }
    if (isPlainObject(options.input)) {
      Object.keys(options.input).forEach(function (key) {
        params.set("input." + key, inputParam(options.input[key]));
      });
    }
    params.set("frame", frameId);
    return base.origin + base.pathname.replace(/\/+$/, "") + "/embed?" + params.toString()
      + (options.grant ? "#grant" : "");
  }

  /** Relay reads input.* values as JSON scalars when they parse: quote strings that would. */
  function inputParam(value) {
    if (typeof value !== "string") return JSON.stringify(value);
    try {
      JSON.parse(value);
      return JSON.stringify(value);
    } catch (err) {
      return value;
    }
  }

  /** Mount the widget in `element`; mounting an element twice returns the first mount. */
  function mount(element, options) {
    if (!element || element.nodeType !== 1) throw new TypeError("RelayEmbed.mount: the first argument must be an element");
    if (element.relayEmbed) return element.relayEmbed;
    options = options || {};
    if (!options.src) throw new TypeError("RelayEmbed.mount: options.src (Relay's origin) is required");
    var base = new URL(String(options.src), document.baseURI);
    if (base.protocol !== "https:" && base.protocol !== "http:") {
      throw new TypeError("RelayEmbed.mount: options.src must be an http(s) URL");
    }
    mounted += 1;
    var frameId = "relay-" + mounted + "-" + Math.random().toString(36).slice(2, 10);
    var iframe = document.createElement("iframe");
    iframe.src = widgetUrl(base, options, frameId);
    iframe.title = options.title || "Relay widget";
    // The widget learns which site embeds it from the referrer: the origin is enough.
    iframe.referrerPolicy = "origin";
    iframe.className = "relay-embed-frame";
    iframe.style.display = "block";  // noticeSilence() sets "none" for a refused frame
    iframe.style.width = "100%";
    iframe.style.border = "0";
    iframe.style.height = (options.height || 240) + "px";

    var handle = {
      element: element,
      iframe: iframe,
      origin: base.origin,
      frame: frameId,
      snapshot: null,
      grant: options.grant ? String(options.grant) : null,
      setGrant: function (grant) {
        handle.grant = String(grant);
        if (iframe.contentWindow) {
          iframe.contentWindow.postMessage({ source: "relay-host", version: PROTOCOL, frame: frameId, type: "grant",
            grant: handle.grant }, base.origin);
        }
      },
      destroy: function () {
        delete frames[frameId];
        if (handle.readyTimer !== null) clearTimeout(handle.readyTimer);
        if (handle.notice) handle.notice.remove();
        iframe.remove();
        if (element.relayEmbed === handle) element.relayEmbed = null;
      },
    };
    handle.ready = false;
    handle.readyTimer = null;
    iframe.addEventListener("load", function () {
      if (!iframe.contentWindow) return;
      var hello = { source: "relay-host", version: PROTOCOL, frame: frameId, type: "hello" };
      if (handle.grant) hello.grant = handle.grant;
      iframe.contentWindow.postMessage(hello, base.origin);
      if (!handle.ready && handle.readyTimer === null) {
        handle.readyTimer = setTimeout(function () { noticeSilence(handle); },
          typeof options.readyTimeout === "number" ? options.readyTimeout : READY_TIMEOUT_MS);
      }
    });
    frames[frameId] = handle;
    element.relayEmbed = handle;
    listen();
    element.appendChild(iframe);
    return handle;
  }

  function listen() {
    if (listening) return;
    listening = true;
    global.addEventListener("message", onMessage);
  }

  function onMessage(event) {
    var data = event.data;
    if (!isPlainObject(data) || data.source !== "relay-embed" || data.version !== PROTOCOL) return;
    if (typeof data.frame !== "string" || !(data.frame in frames)) return;
    var handle = frames[data.frame];
    if (event.origin !== handle.origin || event.source !== handle.iframe.contentWindow) return;
    if (!Object.prototype.hasOwnProperty.call(DOM_EVENTS, data.type) && data.type !== "resize") return;

    if (!handle.ready) {
      handle.ready = true;
      if (handle.readyTimer !== null) clearTimeout(handle.readyTimer);
      handle.readyTimer = null;
      if (handle.notice) handle.notice.remove();
      handle.iframe.style.display = "block";
    }
    if (data.type === "ready" || data.type === "resize") {
      if (typeof data.height !== "number" || !isFinite(data.height) || data.height < 0) return;
      handle.iframe.style.height = Math.min(MAX_HEIGHT, Math.ceil(data.height)) + "px";
      if (data.type === "resize") return;
    }
    var snapshot = isPlainObject(data.snapshot) ? data.snapshot : null;
    if (data.type !== "ready" && snapshot === null) return;
    if (snapshot) handle.snapshot = snapshot;
    handle.element.dispatchEvent(new CustomEvent(DOM_EVENTS[data.type], { detail: snapshot, bubbles: true }));
  }

  /** The widget never said it was ready: tell the page's visitor and its script why, in a sentence. */
  function noticeSilence(handle) {
    handle.readyTimer = null;
    if (handle.ready || !(handle.frame in frames)) return;
    var sentence = "The Relay widget did not load. The Relay server at " + handle.origin
      + " most likely does not allow this page's origin (" + global.location.origin + ") to embed it: "
      + "its owner can add that origin to RELAY_EMBED_ORIGINS.";
    var notice = document.createElement("p");
    notice.className = "relay-embed-notice";
    notice.setAttribute("role", "alert");
    notice.textContent = sentence;
    handle.notice = notice;
    handle.iframe.style.display = "none";
    handle.element.appendChild(notice);
    var detail = { id: null, status: null, output: null, error: sentence, logs: null, progress: null,
      metrics: null, created_at: null, started_at: null, completed_at: null };
    handle.element.dispatchEvent(new CustomEvent(DOM_EVENTS.error, { detail: detail, bubbles: true }));
  }

  function optionsFromData(element) {
    var data = element.dataset;
    var options = {
      src: data.relaySrc,
      model: data.model,
      prompt: data.prompt,
      autostart: data.autostart,
      theme: data.theme,
      editable: data.editable,
      title: data.title,
      grant: data.grant,
    };
    if (data.input) {
      try {
        options.input = JSON.parse(data.input);
      } catch (err) {
        if (global.console) global.console.warn("RelayEmbed: data-input is not JSON; it is ignored.", element);
      }
    }
    return options;
  }

  /** Mount every element with data-relay-src under `scope` (the document by default). */
  function mountAll(scope) {
    var elements = (scope || document).querySelectorAll("[data-relay-src]");
    return Array.prototype.map.call(elements, function (element) {
      return mount(element, optionsFromData(element));
    });
  }

  global.RelayEmbed = { mount: mount, mountAll: mountAll, version: PROTOCOL };

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", function () { mountAll(); });
  } else {
    mountAll();
  }
})(window);
