/*
 * Relay's browser client: start a prediction, follow its Server-Sent Events,
 * cancel it, and survive the network in between.
 *
 * How it loads, with no build step: this file is a classic script (no import
 * or export statements), so `<script src=".../relay-client.js">` works and
 * defines `window.RelayClient`. Under CommonJS (node) it also fills
 * `module.exports`. `relay-client.mjs` imports this file for that side effect
 * and re-exports the same objects as ES module names, so there is one source.
 *
 * Pieces, smallest first:
 *   backoffDelay()      full-jitter exponential backoff with a ceiling
 *   composeEventId()    the multiplexed stream's comma-joined event id
 *   StreamConnection    one reconnecting EventSource: backoff, attempt limit,
 *                       stall watchdog, 204/4xx probe, visibility/online nudges
 *   RelayMultiplex      many predictions over one /api/events connection
 *   RelayClient         one prediction: POST, state machine, callbacks
 *
 * Use:
 *   var client = new RelayClient({
 *     onStatus(status, snapshot), onProgress(progress, snapshot),
 *     onOutput({value, text, delta}), onLogs(logs, snapshot), onSnapshot(snapshot),
 *     onConnection({state, attempt, nextRetryAt}), onUpstream({state, error, retryIn}),
 *     onState({phase, status, id, attempt, nextRetryAt, connection, error}),
 *     onSuccess(snapshot), onError(relayError),
 *     multiplex,   // optional RelayClient.Multiplex shared by several clients
 *     heartbeatMs, stallMs, retryBaseMs, retryMaxMs, maxAttempts, apiRoot, onHandlerError,
 *   });
 *   client.start("relay/image-demo", {prompt: "a fox"});  // POST once, then follow
 *   client.follow(streamUrl);                            // or follow a known stream
 *   client.cancel(); client.close(); client.state;
 * A RelayError carries `message` (a sentence for a person), `code`, `status`,
 * `kind` ("request", "stream", "prediction" or "cancel") and `retryAfterMs`.
 *
 * The prediction state machine (RelayClient#phase):
 *   idle -> submitting -> streaming <-> reconnecting -> succeeded | failed | canceled | error
 * `aborted` (a deadline passed before the prediction started) ends in the
 * `failed` phase; the raw status "aborted" is still reported through onStatus.
 * `error` means the client could not learn the outcome: the POST was refused,
 * the stream answered 4xx, or reconnection gave up.
 */
(function (root, factory) {
  "use strict";
  var api = factory();
  root.RelayClient = api.RelayClient;
  if (typeof module === "object" && module && module.exports) {
    module.exports = api;
  }
})(typeof globalThis !== "undefined" ? globalThis : this, function () {
  "use strict";

  var TERMINAL_PHASE_BY_STATUS = {
    succeeded: "succeeded",
    failed: "failed",
    canceled: "canceled",
    aborted: "failed",
  };
  var STREAM_EVENT_TYPES = ["message", "output", "logs", "upstream", "done"];
  var EVENTSOURCE_CLOSED = 2;
  var DEFAULTS = {
    heartbeatMs: 15000,
    retryBaseMs: 1000,
    retryMaxMs: 30000,
    maxAttempts: 10,
  };

  function isTerminalStatus(status) {
    return Object.prototype.hasOwnProperty.call(TERMINAL_PHASE_BY_STATUS, status);
  }

  function isTerminalPhase(phase) {
    return phase === "succeeded" || phase === "failed" || phase === "canceled" || phase === "error";
  }

  /** Delay before reconnect attempt `attempt` (1-based): uniform in [0, min(max, base * 2^(attempt-1))). */
  function backoffDelay(attempt, baseMs, maxMs, random) {
    var ceiling = Math.min(maxMs, baseMs * Math.pow(2, Math.max(0, attempt - 1)));
    return Math.floor(random() * ceiling);
  }

  /** The multiplexed stream's event id: one position per watched prediction, in watch order. */
  function composeEventId(positions) {
    return positions.map(function (p) { return p || ""; }).join(",");
  }

  /** Split a multiplexed event id into `count` positions, or null when it does not fit. */
  function parseEventId(eventId, count) {
    if (typeof eventId !== "string" || eventId === "") return null;
    var parts = eventId.split(",");
    return parts.length === count ? parts : null;
  }

  /** Append query parameters to a possibly relative URL, leaving its other parameters alone. */
  function withQuery(url, params) {
    var pairs = [];
    Object.keys(params).forEach(function (key) {
      var values = [].concat(params[key]);
      values.forEach(function (value) {
        if (value === undefined || value === null) return;
        pairs.push(encodeURIComponent(key) + "=" + encodeURIComponent(value));
      });
    });
    if (pairs.length === 0) return url;
    var hashAt = url.indexOf("#");
    var hash = hashAt >= 0 ? url.slice(hashAt) : "";
    var base = hashAt >= 0 ? url.slice(0, hashAt) : url;
    var joiner = base.indexOf("?") >= 0 ? (/[?&]$/.test(base) ? "" : "&") : "?";
    return base + joiner + pairs.join("&") + hash;
  }

  function queryParam(url, name) {
    var queryAt = url.indexOf("?");
    if (queryAt < 0) return null;
    var query = url.slice(queryAt + 1).split("#")[0];
    var found = null;
    query.split("&").forEach(function (pair) {
      var eq = pair.indexOf("=");
      var key = decodeURIComponent((eq >= 0 ? pair.slice(0, eq) : pair).replace(/\+/g, " "));
      if (key === name && found === null) {
        found = decodeURIComponent((eq >= 0 ? pair.slice(eq + 1) : "").replace(/\+/g, " "));
      }
    });
    return found;
  }

  function predictionIdFromStreamUrl(url) {
    var match = /\/predictions\/([^/?#]+)\/events/.exec(url);
    return match ? decodeURIComponent(match[1]) : null;
  }

  function cancelUrlFromStreamUrl(url) {
    return url.replace(/\/events(?=[?#]|$)/, "/cancel");
  }

  function sameJson(a, b) {
    return JSON.stringify(a) === JSON.stringify(b);
  }

  /** Text of an output: a list of string tokens joined, a string as is, otherwise null. */
  function textOfOutput(output) {
    if (typeof output === "string") return output;
    if (Array.isArray(output) && output.every(function (t) { return typeof t === "string"; })) {
      return output.join("");
    }
    return null;
  }

  /** What to do after the stream's URL answered `status` to a probe. */
  function classifyStatus(status) {
    if (status === 204) return "stop";
    if (status === 408 || status === 429) return "retry";
    if (status >= 400 && status < 500) return "fatal";
    return "retry";
  }

  function retryAfterMs(response) {
    var header = response && response.headers && response.headers.get
      ? response.headers.get("Retry-After") : null;
    var seconds = header === null || header === undefined ? NaN : Number(header);
    return isFinite(seconds) && seconds >= 0 ? seconds * 1000 : 0;
  }

  function readJson(response) {
    try {
      return Promise.resolve(response.json()).catch(function () { return null; });
    } catch (err) {
      return Promise.resolve(null);
    }
  }

  /** An error the client reports: `message` is a sentence for a person. */
  function RelayError(message, details) {
    var err = new Error(message);
    err.name = "RelayError";
    details = details || {};
    err.code = details.code || "error";
    err.status = details.status || null;
    err.kind = details.kind || "stream";
    err.retryAfterMs = details.retryAfterMs || 0;
    return err;
  }

  function errorFromResponse(response, body, kind) {
    var message = body && typeof body.error === "string" && body.error
      ? body.error
      : "Relay answered " + response.status + ". Please try again.";
    return RelayError(message, {
      code: (body && body.code) || "http_" + response.status,
      status: response.status,
      kind: kind,
      retryAfterMs: retryAfterMs(response),
    });
  }

  /** The browser facilities the client uses; each can be replaced through options (tests do). */
  function resolveEnvironment(options) {
    var g = typeof globalThis !== "undefined" ? globalThis : {};
    function pick(name, fallback) {
      return Object.prototype.hasOwnProperty.call(options, name) ? options[name] : fallback;
    }
    return {
      EventSource: pick("EventSource", g.EventSource),
      fetch: pick("fetch", g.fetch ? g.fetch.bind(g) : undefined),
      setTimeout: pick("setTimeout", g.setTimeout ? g.setTimeout.bind(g) : undefined),
      clearTimeout: pick("clearTimeout", g.clearTimeout ? g.clearTimeout.bind(g) : undefined),
      random: pick("random", Math.random),
      now: pick("now", Date.now),
      document: pick("document", g.document),
      window: pick("window", g.window),
      navigator: pick("navigator", g.navigator),
      AbortController: pick("AbortController", g.AbortController),
    };
  }

  function reportHandlerError(handler, error, where) {
    if (typeof handler === "function") {
      try { handler(error, where); return; } catch (ignored) { /* fall through to the console */ }
    }
    if (typeof console !== "undefined" && console.warn) {
      console.warn("RelayClient: a handler threw in " + where + "; the stream goes on.", error);
    }
  }

  /* ------------------------------------------------------------------ */

  /**
   * One reconnecting EventSource.
   *
   * Every EventSource `error` closes the source and the connection decides
   * what next, instead of letting the browser retry on its own: one place
   * owns the backoff, the attempt count and the resume id. When the browser
   * had already given up (readyState CLOSED: a non-200 answer), one fetch of
   * the same URL tells 204 (stop), 4xx (fatal) and the rest (retry) apart.
   *
   * Attempts count consecutive failures. They reset only after a parsed
   * server event, never at `open`, so a server that accepts and then drops
   * connections still reaches the limit.
   *
   * The stall watchdog: EventSource hides comment lines, so the server's
   * heartbeats cannot feed it. It fires after 3.5 heartbeat intervals with no
   * event. If the connection had opened, the silence may just be a quiet
   * prediction: it reopens at once, resuming by id (no duplicates), and the
   * attempt count does not change. If it never opened, that is a failed
   * attempt like any other. Quiet streams thus reconnect now and then, which
   * costs one request and is harmless.
   *
   * States: idle, connecting, open, reconnecting, offline, closed, failed.
   */
  function StreamConnection(options) {
    this.env = options.env;
    this.buildUrl = options.buildUrl;
    this.onEvent = options.onEvent;
    this.onState = options.onState;
    this.onStop = options.onStop;
    this.onHandlerError = options.onHandlerError;
    this.heartbeatMs = options.heartbeatMs || DEFAULTS.heartbeatMs;
    this.stallMs = options.stallMs || Math.round(this.heartbeatMs * 3.5);
    this.retryBaseMs = options.retryBaseMs || DEFAULTS.retryBaseMs;
    this.retryMaxMs = options.retryMaxMs || DEFAULTS.retryMaxMs;
    this.maxAttempts = options.maxAttempts || DEFAULTS.maxAttempts;

    this.state = "idle";
    this.attempt = 0;
    this.nextRetryAt = null;
    this.lastEventId = "";
    this.source = null;
    this.sourceListeners = null;
    this.url = null;
    this.retryTimer = null;
    this.watchdogTimer = null;
    this.lastActivityAt = 0;
    this.generation = 0;
    this.finished = false;
    this.pageListeners = [];
  }

  StreamConnection.prototype.start = function () {
    if (this.finished || this.state !== "idle") return;
    this.listenToPage();
    this.open();
  };

  /** Reopen now with a freshly built URL (new watch list, or a nudge), keeping the attempt count. */
  StreamConnection.prototype.reconnectNow = function () {
    if (this.finished) return;
    this.dropSource();
    this.open();
  };

  StreamConnection.prototype.close = function () {
    if (this.finished) return;
    this.teardown();
    this.setState("closed");
  };

  StreamConnection.prototype.teardown = function () {
    this.finished = true;
    this.generation += 1;
    this.dropSource();
    this.clearRetryTimer();
    this.stopListeningToPage();
    this.nextRetryAt = null;
  };

  StreamConnection.prototype.finish = function (reason, error) {
    if (this.finished) return;
    this.teardown();
    this.setState(reason === "ended" ? "closed" : "failed");
    this.callOut(this.onStop, [reason, error || null], "onStop");
  };

  StreamConnection.prototype.open = function () {
    this.clearRetryTimer();
    this.nextRetryAt = null;
    var url = this.buildUrl(this.lastEventId);
    this.url = url;
    var source = new this.env.EventSource(url);
    this.source = source;
    this.bindSource(source);
    this.touch();
    this.setState(this.attempt > 0 ? "reconnecting" : "connecting");
  };

  StreamConnection.prototype.bindSource = function (source) {
    var self = this;
    var listeners = {
      open: function () { self.handleOpen(source); },
      error: function () { self.handleError(source); },
    };
    STREAM_EVENT_TYPES.forEach(function (type) {
      listeners[type] = function (event) { self.handleEvent(source, type, event); };
    });
    Object.keys(listeners).forEach(function (type) {
      source.addEventListener(type, listeners[type]);
    });
    this.sourceListeners = listeners;
  };

  StreamConnection.prototype.dropSource = function () {
    var source = this.source;
    var listeners = this.sourceListeners;
    this.source = null;
    this.sourceListeners = null;
    this.clearWatchdog();
    if (!source) return;
    Object.keys(listeners).forEach(function (type) {
      source.removeEventListener(type, listeners[type]);
    });
    source.close();
  };

  StreamConnection.prototype.handleOpen = function (source) {
    if (source !== this.source) return;
    this.touch();
    this.setState("open");
  };

  StreamConnection.prototype.handleEvent = function (source, type, event) {
    if (source !== this.source) return;
    this.touch();
    if (typeof event.lastEventId === "string" && event.lastEventId !== "") {
      this.lastEventId = event.lastEventId;
    }
    var data;
    try {
      data = JSON.parse(event.data);
    } catch (err) {
      reportHandlerError(this.onHandlerError, err, "parsing a '" + type + "' event");
      return;
    }
    this.markHealthy();
    this.callOut(this.onEvent, [type, data, this.lastEventId], "on " + type);
  };

  /** A parsed server event proves the stream works: forget past failures. */
  StreamConnection.prototype.markHealthy = function () {
    if (this.attempt === 0 && this.state === "open") return;
    this.attempt = 0;
    this.setState("open");
  };

  StreamConnection.prototype.handleError = function (source) {
    if (source !== this.source) return;
    var browserGaveUp = source.readyState === EVENTSOURCE_CLOSED;
    var url = this.url;
    this.dropSource();
    if (browserGaveUp) {
      this.probe(url);
    } else {
      this.retryLater(0);
    }
  };

  /** Ask the URL once, with fetch, why the browser gave up on it. */
  StreamConnection.prototype.probe = function (url) {
    var self = this;
    var generation = this.generation;
    var controller = this.env.AbortController ? new this.env.AbortController() : null;
    this.setState("reconnecting");
    var request = Promise.resolve().then(function () {
      return self.env.fetch(url, {
        headers: { Accept: "text/event-stream" },
        cache: "no-store",
        signal: controller ? controller.signal : undefined,
      });
    });
    request.then(function (response) {
      if (response.status === 200 && controller) controller.abort();
      var verdict = classifyStatus(response.status);
      var body = verdict === "fatal" ? readJson(response) : Promise.resolve(null);
      return body.then(function (json) {
        if (generation !== self.generation) return;
        self.actOnProbe(verdict, response, json);
      });
    }).catch(function () {
      if (generation !== self.generation) return;
      self.retryLater(0);
    });
  };

  StreamConnection.prototype.actOnProbe = function (verdict, response, body) {
    if (verdict === "stop") {
      this.finish("ended");
    } else if (verdict === "fatal") {
      this.finish("fatal", errorFromResponse(response, body, "stream"));
    } else {
      this.retryLater(retryAfterMs(response));
    }
  };

  /** Count a failed attempt and schedule the next one, or give up at the limit. */
  StreamConnection.prototype.retryLater = function (minimumDelayMs) {
    if (this.finished) return;
    this.clearRetryTimer();
    if (!this.isOnline()) {
      // Not counted as an attempt; the `online` event reconnects sooner, and
      // the slow timer covers a browser whose onLine flag is wrong.
      this.scheduleOpen(this.retryMaxMs, "offline");
      return;
    }
    this.attempt += 1;
    if (this.attempt > this.maxAttempts) {
      this.attempt = this.maxAttempts;
      this.finish("exhausted", RelayError(
        "Lost the connection to Relay after " + this.maxAttempts + " attempts.",
        { code: "reconnect_limit", kind: "stream" }
      ));
      return;
    }
    var delay = Math.max(minimumDelayMs || 0,
      backoffDelay(this.attempt, this.retryBaseMs, this.retryMaxMs, this.env.random));
    this.scheduleOpen(delay, "reconnecting");
  };

  StreamConnection.prototype.scheduleOpen = function (delay, state) {
    var self = this;
    this.clearRetryTimer();
    this.nextRetryAt = this.env.now() + delay;
    this.retryTimer = this.env.setTimeout(function () {
      self.retryTimer = null;
      self.open();
    }, delay);
    this.setState(state);
  };

  StreamConnection.prototype.clearRetryTimer = function () {
    if (this.retryTimer !== null) {
      this.env.clearTimeout(this.retryTimer);
      this.retryTimer = null;
    }
  };

  /** Note that bytes arrived and restart the stall watchdog. */
  StreamConnection.prototype.touch = function () {
    var self = this;
    this.lastActivityAt = this.env.now();
    this.clearWatchdog();
    this.watchdogTimer = this.env.setTimeout(function () {
      self.watchdogTimer = null;
      self.handleStall();
    }, this.stallMs);
  };

  StreamConnection.prototype.clearWatchdog = function () {
    if (this.watchdogTimer !== null) {
      this.env.clearTimeout(this.watchdogTimer);
      this.watchdogTimer = null;
    }
  };

  StreamConnection.prototype.handleStall = function () {
    if (!this.source) return;
    var hadOpened = this.state === "open";
    this.dropSource();
    if (hadOpened) {
      this.open();
    } else {
      this.retryLater(0);
    }
  };

  StreamConnection.prototype.isOnline = function () {
    var nav = this.env.navigator;
    return !(nav && nav.onLine === false);
  };

  /** Back in view or back online: do not sit out a backoff delay or a dead socket. */
  StreamConnection.prototype.handleWakeUp = function () {
    if (this.finished) return;
    if (this.retryTimer !== null || this.state === "offline") {
      this.open();
    } else if (this.source && this.env.now() - this.lastActivityAt >= this.stallMs) {
      this.handleStall();
    }
  };

  StreamConnection.prototype.listenToPage = function () {
    var self = this;
    var doc = this.env.document;
    var win = this.env.window;
    if (doc && doc.addEventListener) {
      this.addPageListener(doc, "visibilitychange", function () {
        if (doc.visibilityState === "visible") self.handleWakeUp();
      });
    }
    if (win && win.addEventListener) {
      this.addPageListener(win, "online", function () { self.handleWakeUp(); });
    }
  };

  StreamConnection.prototype.addPageListener = function (target, type, listener) {
    target.addEventListener(type, listener);
    this.pageListeners.push({ target: target, type: type, listener: listener });
  };

  StreamConnection.prototype.stopListeningToPage = function () {
    this.pageListeners.forEach(function (entry) {
      entry.target.removeEventListener(entry.type, entry.listener);
    });
    this.pageListeners = [];
  };

  StreamConnection.prototype.setState = function (state) {
    this.state = state;
    this.callOut(this.onState, [this.describe()], "onState");
  };

  StreamConnection.prototype.describe = function () {
    return { state: this.state, attempt: this.attempt, nextRetryAt: this.nextRetryAt };
  };

  StreamConnection.prototype.callOut = function (fn, args, where) {
    if (typeof fn !== "function") return;
    try {
      fn.apply(null, args);
    } catch (err) {
      reportHandlerError(this.onHandlerError, err, where);
    }
  };

  /* ------------------------------------------------------------------ */

  /**
   * Several predictions over one `/api/events?watch=…` connection, because a
   * browser opens only about six connections per host.
   *
   * Each watched prediction keeps its own position (the last per-prediction
   * event id seen). Whenever the connection is (re)built, the watch list is
   * the predictions still running, in a stable order, and `lastEventId` is
   * composed from their positions (empty for one with nothing received yet).
   */
  function RelayMultiplex(options) {
    options = options || {};
    this.options = options;
    this.env = options.env || resolveEnvironment(options);
    this.eventsUrl = options.eventsUrl || (options.apiRoot || "") + "/api/events";
    this.onConnection = options.onConnection || null;
    this.entries = [];
    this.watchOrder = [];
    this.connection = null;
    this.connectionInfo = { state: "idle", attempt: 0, nextRetryAt: null };
    this.closed = false;
  }

  /** Follow `client`'s prediction on the shared connection. */
  RelayMultiplex.prototype.watch = function (client, streamUrl, predictionId) {
    if (this.closed) throw new Error("RelayMultiplex is closed");
    var token = queryParam(streamUrl, "token");
    var id = predictionId || predictionIdFromStreamUrl(streamUrl);
    this.entries.push({ client: client, id: id, token: token, position: "", done: false });
    this.refreshConnection();
    client.connectionChanged(this.connectionInfo);
  };

  /** Stop following `client`; the next (re)connection leaves it out. */
  RelayMultiplex.prototype.release = function (client) {
    this.entries.forEach(function (entry) {
      if (entry.client === client) entry.done = true;
    });
    if (this.activeEntries().length === 0) this.dropConnection("idle");
  };

  RelayMultiplex.prototype.activeEntries = function () {
    return this.entries.filter(function (entry) { return !entry.done; });
  };

  RelayMultiplex.prototype.refreshConnection = function () {
    if (this.activeEntries().length === 0) return;
    if (!this.connection) {
      this.connection = this.createConnection();
      this.connection.start();
      return;
    }
    var state = this.connection.state;
    if (state === "open" || state === "connecting") this.connection.reconnectNow();
    // Otherwise a retry is pending: the new prediction joins that attempt.
  };

  /** Reconnect at once, resetting nothing but the wait (a "Reconnect" button). */
  RelayMultiplex.prototype.reconnectNow = function () {
    if (this.connection) {
      this.connection.reconnectNow();
    } else {
      this.refreshConnection();
    }
  };

  RelayMultiplex.prototype.createConnection = function () {
    var self = this;
    var connection = new StreamConnection({
      env: this.env,
      heartbeatMs: this.options.heartbeatMs,
      stallMs: this.options.stallMs,
      retryBaseMs: this.options.retryBaseMs,
      retryMaxMs: this.options.retryMaxMs,
      maxAttempts: this.options.maxAttempts,
      onHandlerError: this.options.onHandlerError,
      buildUrl: function () { return self.buildUrl(); },
      onEvent: function (type, data, eventId) { self.route(connection, type, data, eventId); },
      onState: function (info) { if (connection === self.connection) self.announce(info); },
      onStop: function (reason, error) { self.handleStop(connection, reason, error); },
    });
    return connection;
  };

  RelayMultiplex.prototype.buildUrl = function () {
    var active = this.activeEntries();
    this.watchOrder = active;
    var positions = active.map(function (entry) { return entry.position; });
    var hasPosition = positions.some(function (p) { return p !== ""; });
    return withQuery(this.eventsUrl, {
      watch: active.map(function (entry) { return entry.token; }),
      lastEventId: hasPosition ? composeEventId(positions) : null,
    });
  };

  RelayMultiplex.prototype.rememberPositions = function (eventId) {
    var parts = parseEventId(eventId, this.watchOrder.length);
    if (!parts) return;
    this.watchOrder.forEach(function (entry, index) {
      if (parts[index] !== "") entry.position = parts[index];
    });
  };

  RelayMultiplex.prototype.route = function (connection, type, data, eventId) {
    if (connection !== this.connection) return;
    this.rememberPositions(eventId);
    var entry = this.findEntry(data && data.id);
    if (!entry || entry.done) return;
    entry.client.receive(type, data);
    if (type === "done") this.release(entry.client);
  };

  RelayMultiplex.prototype.findEntry = function (id) {
    for (var i = 0; i < this.entries.length; i += 1) {
      if (this.entries[i].id === id && !this.entries[i].done) return this.entries[i];
    }
    return null;
  };

  RelayMultiplex.prototype.handleStop = function (connection, reason, error) {
    if (connection !== this.connection) return;
    this.connection = null;
    var stopped = this.activeEntries();
    stopped.forEach(function (entry) { entry.done = true; });
    this.announce({ state: reason === "ended" ? "idle" : "failed", attempt: 0, nextRetryAt: null });
    stopped.forEach(function (entry) { entry.client.streamStopped(reason, error); });
  };

  RelayMultiplex.prototype.dropConnection = function (state) {
    var connection = this.connection;
    this.connection = null;
    if (connection) connection.close();
    this.announce({ state: state, attempt: 0, nextRetryAt: null });
  };

  RelayMultiplex.prototype.announce = function (info) {
    this.connectionInfo = info;
    this.activeEntries().forEach(function (entry) { entry.client.connectionChanged(info); });
    if (typeof this.onConnection === "function") {
      try {
        this.onConnection(info);
      } catch (err) {
        reportHandlerError(this.options.onHandlerError, err, "onConnection");
      }
    }
  };

  RelayMultiplex.prototype.close = function () {
    if (this.closed) return;
    this.closed = true;
    this.entries.forEach(function (entry) { entry.done = true; });
    this.dropConnection("closed");
  };

  /* ------------------------------------------------------------------ */

  var CALLBACK_NAMES = [
    "onState", "onStatus", "onProgress", "onOutput", "onLogs", "onSnapshot",
    "onConnection", "onUpstream", "onSuccess", "onError",
  ];

  /**
   * One prediction, from its POST to its outcome.
   *
   * options: apiRoot, multiplex (a RelayMultiplex to share), heartbeatMs,
   * stallMs, retryBaseMs, retryMaxMs, maxAttempts, onHandlerError, the
   * callbacks in CALLBACK_NAMES, and the injectable EventSource, fetch,
   * setTimeout, clearTimeout, random, now, document, window, navigator.
   */
  function RelayClient(options) {
    options = options || {};
    this.options = options;
    this.env = resolveEnvironment(options);
    this.handlers = {};
    var handlers = this.handlers;
    CALLBACK_NAMES.forEach(function (name) {
      if (typeof options[name] === "function") handlers[name] = options[name];
    });
    this.apiRoot = options.apiRoot || "";
    this.multiplex = options.multiplex || null;

    this.phase = "idle";
    this.status = null;
    this.snapshot = null;
    this.prediction = null;
    this.error = null;
    this.connection = { state: "idle", attempt: 0, nextRetryAt: null };
    this.progress = null;
    this.logs = null;
    this.outputValue = null;
    this.text = "";
    this.upstream = { state: "ok", error: null, retryIn: null };
    this.stream = null;
    this.cancelRequested = false;
    this.closed = false;
  }

  Object.defineProperty(RelayClient.prototype, "state", {
    get: function () {
      return {
        phase: this.phase,
        status: this.status,
        id: this.prediction ? this.prediction.id : null,
        attempt: this.connection.attempt,
        nextRetryAt: this.connection.nextRetryAt,
        connection: this.connection.state,
        error: this.error,
      };
    },
  });

  /** POST the prediction once, then follow it. Resolves with the create answer; rejects with a RelayError. */
  RelayClient.prototype.start = function (model, input) {
    if (this.phase !== "idle" || this.closed) {
      return Promise.reject(new Error("start() is for a new, idle RelayClient"));
    }
    var self = this;
    this.setPhase("submitting");
    return this.postPrediction(model, input).then(function (created) {
      if (self.closed) return created;
      self.prediction = created;
      self.setStatus(created.status || "starting", null);
      self.follow(created.stream_url, { id: created.id, cancelUrl: created.cancel_url });
      if (self.cancelRequested) self.cancel().catch(function () {});
      return created;
    }, function (error) {
      self.fail(error);
      throw error;
    });
  };

  RelayClient.prototype.postPrediction = function (model, input) {
    var env = this.env;
    var url = this.apiRoot + "/api/predictions";
    return Promise.resolve().then(function () {
      return env.fetch(url, {
        method: "POST",
        headers: { "Content-Type": "application/json", Accept: "application/json" },
        body: JSON.stringify({ model: model, input: input }),
      });
    }).catch(function () {
      throw RelayError("Could not reach Relay. Check your connection and try again.",
        { code: "network_error", kind: "request" });
    }).then(function (response) {
      return readJson(response).then(function (body) {
        if (!response.ok || !body || body.success === false || !body.stream_url) {
          throw errorFromResponse(response, body, "request");
        }
        return body;
      });
    });
  };

  /** Follow a prediction's stream (from start(), or a stream_url obtained elsewhere). */
  RelayClient.prototype.follow = function (streamUrl, details) {
    if (this.closed) throw new Error("RelayClient is closed");
    if (this.stream || isTerminalPhase(this.phase)) return;
    details = details || {};
    var id = details.id || predictionIdFromStreamUrl(streamUrl);
    this.prediction = this.prediction || { id: id, status: null };
    this.prediction.id = this.prediction.id || id;
    this.prediction.stream_url = streamUrl;
    this.prediction.cancel_url = details.cancelUrl || this.prediction.cancel_url
      || cancelUrlFromStreamUrl(streamUrl);
    this.setPhase("streaming");
    if (this.multiplex) {
      this.stream = { multiplexed: true };
      this.multiplex.watch(this, streamUrl, this.prediction.id);
    } else {
      this.stream = this.createOwnStream(streamUrl);
      this.stream.start();
    }
  };

  RelayClient.prototype.createOwnStream = function (streamUrl) {
    var self = this;
    var options = this.options;
    return new StreamConnection({
      env: this.env,
      heartbeatMs: options.heartbeatMs,
      stallMs: options.stallMs,
      retryBaseMs: options.retryBaseMs,
      retryMaxMs: options.retryMaxMs,
      maxAttempts: options.maxAttempts,
      onHandlerError: options.onHandlerError,
      buildUrl: function (lastEventId) {
        return withQuery(streamUrl, { lastEventId: lastEventId || null });
      },
      onEvent: function (type, data) { self.receive(type, data); },
      onState: function (info) { self.connectionChanged(info); },
      onStop: function (reason, error) { self.streamStopped(reason, error); },
    });
  };

  /** Ask the server to cancel. Resolves with its answer; the outcome itself arrives on the stream. */
  RelayClient.prototype.cancel = function () {
    if (this.closed || isTerminalPhase(this.phase)) return Promise.resolve(null);
    if (this.phase === "submitting") {
      this.cancelRequested = true;
      return Promise.resolve(null);
    }
    if (!this.prediction || !this.prediction.cancel_url) return Promise.resolve(null);
    var env = this.env;
    var url = this.prediction.cancel_url;
    return Promise.resolve().then(function () {
      return env.fetch(url, { method: "POST", headers: { Accept: "application/json" } });
    }).catch(function () {
      throw RelayError("Could not reach Relay to cancel. Try again.",
        { code: "network_error", kind: "cancel" });
    }).then(function (response) {
      return readJson(response).then(function (body) {
        if (!response.ok || !body || body.success === false) {
          throw errorFromResponse(response, body, "cancel");
        }
        return body;
      });
    });
  };

  /** Stop following and calling back. Safe to call any number of times. */
  RelayClient.prototype.close = function () {
    if (this.closed) return;
    this.detachStream();
    this.closed = true;
    this.handlers = {};
  };

  RelayClient.prototype.detachStream = function () {
    var stream = this.stream;
    this.stream = null;
    if (!stream) return;
    if (stream.multiplexed) {
      this.multiplex.release(this);
    } else {
      stream.close();
    }
  };

  /* Called by the stream (own or multiplexed) for each parsed event. */
  RelayClient.prototype.receive = function (type, data) {
    if (this.closed || isTerminalPhase(this.phase) || !data) return;
    if (type === "message") this.applySnapshot(data);
    else if (type === "output") this.applyOutputChunk(data);
    else if (type === "logs") this.applyLogsDelta(data);
    else if (type === "upstream") this.applyUpstream(data);
    else if (type === "done") this.applyDone(data);
  };

  RelayClient.prototype.applySnapshot = function (snapshot) {
    this.snapshot = snapshot;
    this.setStatus(snapshot.status, snapshot);
    this.applyProgress(snapshot);
    this.applyLogs(snapshot);
    this.applyOutput(snapshot);
    this.emit("onSnapshot", snapshot);
    if (isTerminalStatus(snapshot.status)) this.settle(snapshot.status, snapshot);
  };

  RelayClient.prototype.setStatus = function (status, snapshot) {
    if (!status || status === this.status) return;
    this.status = status;
    if (this.prediction) this.prediction.status = status;
    this.emit("onStatus", status, snapshot);
  };

  /**
   * Progress never moves backwards within one stage: a lower percent with the
   * same step label is a late or re-derived reading, so the shown one stays.
   * A new step label starts a new stage. Success shows 100%.
   */
  RelayClient.prototype.applyProgress = function (snapshot) {
    var next = snapshot.progress || null;
    var shown = this.progress;
    if (snapshot.status === "succeeded") {
      next = Object.assign({}, shown || {}, next || {}, { percent: 100, eta_seconds: 0 });
    }
    if (!next) return;
    var sameStage = shown && (shown.step || "") === (next.step || "");
    if (sameStage && typeof shown.percent === "number"
      && (typeof next.percent !== "number" || next.percent < shown.percent)) {
      return;
    }
    if (sameJson(shown, next)) return;
    this.progress = next;
    this.emit("onProgress", next, snapshot);
  };

  /*
   * Logs arrive as a tail in a connection's first snapshot (`logs`, from code point
   * `logs_offset`) and then as `event: logs` deltas at an offset; later snapshots
   * carry `logs: null`. Offsets count code points, not UTF-16 units.
   */
  RelayClient.prototype.applyLogs = function (snapshot) {
    if (snapshot.logs === null && typeof snapshot.logs_length === "number") return;
    var logs = snapshot.logs || "";
    this.logsEnd = (snapshot.logs_offset || 0) + Array.from(logs).length;
    if (logs === this.logs) return;
    this.logs = logs;
    this.emit("onLogs", logs, this.snapshot);
  };

  RelayClient.prototype.applyLogsDelta = function (data) {
    if (typeof data.text !== "string" || typeof data.offset !== "number") return;
    var end = this.logsEnd || 0;
    if (data.offset > end) return; // a gap: the next first snapshot or the full log mends it
    var points = Array.from(data.text);
    var fresh = points.slice(end - data.offset).join("");
    if (!fresh) return;
    this.logsEnd = end + points.length - (end - data.offset);
    this.logs = (this.logs || "") + fresh;
    this.emit("onLogs", this.logs, this.snapshot);
  };

  /**
   * The snapshot's output is authoritative. While running, text that the
   * deltas already carried past it is kept, so a snapshot older than the
   * latest chunk does not make the text shrink and regrow.
   */
  RelayClient.prototype.applyOutput = function (snapshot) {
    var value = snapshot.output === undefined ? null : snapshot.output;
    if (sameJson(value, this.outputValue)) return;
    this.outputValue = value;
    var text = textOfOutput(value);
    if (text !== null) {
      var aheadByDeltas = !isTerminalStatus(snapshot.status)
        && this.text.length > text.length && this.text.indexOf(text) === 0;
      this.text = aheadByDeltas ? this.text : text;
    }
    this.emit("onOutput", { value: value, text: text === null ? null : this.text, delta: null });
  };

  RelayClient.prototype.applyOutputChunk = function (data) {
    if (typeof data.text !== "string" || data.text === "") return;
    this.text += data.text;
    this.emit("onOutput", { value: this.outputValue, text: this.text, delta: data.text });
  };

  RelayClient.prototype.applyUpstream = function (data) {
    this.upstream = {
      state: data.state === "degraded" ? "degraded" : "ok",
      error: data.error || null,
      retryIn: typeof data.retry_in === "number" ? data.retry_in : null,
    };
    this.emit("onUpstream", this.upstream);
  };

  RelayClient.prototype.applyDone = function (data) {
    var status = isTerminalStatus(data.status) ? data.status : this.status;
    if (!isTerminalStatus(status)) return;
    var snapshot = Object.assign({}, this.snapshot || {}, { status: status });
    this.setStatus(status, snapshot);
    this.settle(status, snapshot);
  };

  RelayClient.prototype.settle = function (status, snapshot) {
    this.detachStream();
    if (this.upstream.state !== "ok") this.applyUpstream({ state: "ok" });
    this.setPhase(TERMINAL_PHASE_BY_STATUS[status]);
    if (status === "succeeded") {
      this.emit("onSuccess", snapshot);
    } else if (status !== "canceled") {
      this.error = RelayError(snapshot.error || "The prediction " + status + ".",
        { code: "prediction_" + status, kind: "prediction" });
      this.emit("onError", this.error);
    }
  };

  /* Called by the stream when it has ended for good without a terminal event. */
  RelayClient.prototype.streamStopped = function (reason, error) {
    this.stream = null;
    if (this.closed || isTerminalPhase(this.phase)) return;
    this.fail(error || RelayError("The stream ended before the prediction finished.",
      { code: "stream_ended", kind: "stream" }));
  };

  RelayClient.prototype.fail = function (error) {
    this.error = error;
    this.setPhase("error");
    this.emit("onError", error);
  };

  /* Called by the stream whenever the connection's state changes. */
  RelayClient.prototype.connectionChanged = function (info) {
    this.connection = info;
    if (this.phase === "streaming" || this.phase === "reconnecting") {
      var interrupted = info.state === "reconnecting" || info.state === "offline";
      this.phase = interrupted ? "reconnecting" : "streaming";
    }
    this.emit("onConnection", info);
    this.emit("onState", this.state);
  };

  RelayClient.prototype.setPhase = function (phase) {
    if (phase === this.phase) return;
    this.phase = phase;
    this.emit("onState", this.state);
  };

  RelayClient.prototype.emit = function (name) {
    var handler = this.handlers[name];
    if (typeof handler !== "function") return;
    var args = Array.prototype.slice.call(arguments, 1);
    try {
      handler.apply(null, args);
    } catch (err) {
      reportHandlerError(this.options.onHandlerError, err, name);
    }
  };

  RelayClient.Multiplex = RelayMultiplex;
  RelayClient.StreamConnection = StreamConnection;
  RelayClient.RelayError = RelayError;
  RelayClient.backoffDelay = backoffDelay;
  RelayClient.composeEventId = composeEventId;
  RelayClient.parseEventId = parseEventId;
  RelayClient.isTerminalStatus = isTerminalStatus;

  return {
    RelayClient: RelayClient,
    RelayMultiplex: RelayMultiplex,
    StreamConnection: StreamConnection,
    RelayError: RelayError,
    backoffDelay: backoffDelay,
    composeEventId: composeEventId,
    parseEventId: parseEventId,
    isTerminalStatus: isTerminalStatus,
    withQuery: withQuery,
  };
});
