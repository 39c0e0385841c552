/* Generated from static/client/*.js by npm run build:client (esbuild); do not edit. */
(() => {
  // static/client/wire.js
  var TERMINAL_PHASE_BY_STATUS = Object.freeze({
    succeeded: "succeeded",
    failed: "failed",
    canceled: "canceled",
    aborted: "failed"
  });
  var STREAM_EVENT_TYPES = Object.freeze(["message", "output", "logs", "upstream", "done"]);
  var DEFAULTS = Object.freeze({
    heartbeatMs: 15e3,
    retryBaseMs: 1e3,
    retryMaxMs: 3e4,
    maxAttempts: 10,
    createAttempts: 3
  });
  function isTerminalStatus(status) {
    return Object.prototype.hasOwnProperty.call(TERMINAL_PHASE_BY_STATUS, status);
  }
  function isTerminalPhase(phase) {
    return phase === "succeeded" || phase === "failed" || phase === "canceled" || phase === "error";
  }
  function backoffDelay(attempt, baseMs, maxMs, random) {
    const ceiling = Math.min(maxMs, baseMs * 2 ** Math.max(0, attempt - 1));
    return Math.floor(random() * ceiling);
  }
  function composeEventId(positions) {
    return positions.map((p) => p || "").join(",");
  }
  function parseEventId(eventId, count) {
    if (typeof eventId !== "string" || eventId === "") return null;
    const parts = eventId.split(",");
    return parts.length === count ? parts : null;
  }
  function withQuery(url, params) {
    const pairs = [];
    for (const key of Object.keys(params)) {
      for (const value of [].concat(params[key])) {
        if (value === void 0 || value === null) continue;
        pairs.push(encodeURIComponent(key) + "=" + encodeURIComponent(value));
      }
    }
    if (pairs.length === 0) return url;
    const hashAt = url.indexOf("#");
    const hash = hashAt >= 0 ? url.slice(hashAt) : "";
    const base = hashAt >= 0 ? url.slice(0, hashAt) : url;
    const joiner = base.includes("?") ? /[?&]$/.test(base) ? "" : "&" : "?";
    return base + joiner + pairs.join("&") + hash;
  }
  function queryParam(url, name) {
    const queryAt = url.indexOf("?");
    if (queryAt < 0) return null;
    const query = url.slice(queryAt + 1).split("#")[0];
    for (const pair of query.split("&")) {
      const eq = pair.indexOf("=");
      const key = decodeURIComponent((eq >= 0 ? pair.slice(0, eq) : pair).replace(/\+/g, " "));
      if (key === name) return decodeURIComponent((eq >= 0 ? pair.slice(eq + 1) : "").replace(/\+/g, " "));
    }
    return null;
  }
  function predictionIdFromStreamUrl(url) {
    const match = /\/predictions\/([^/?#]+)\/events/.exec(url);
    return match ? decodeURIComponent(match[1]) : null;
  }
  function cancelUrlFromStreamUrl(url) {
    return url.replace(/\/events(?=[?#]|$)/, "/cancel");
  }
  function logsUrlFromStreamUrl(url) {
    if (!/\/predictions\/[^/?#]+\/events(?=[?#]|$)/.test(url)) return null;
    const token = queryParam(url, "token");
    const path = url.split(/[?#]/)[0].replace(/\/events$/, "/logs");
    return withQuery(path, { token });
  }
  function sameJson(a, b) {
    return JSON.stringify(a) === JSON.stringify(b);
  }
  function textOfOutput(output) {
    if (typeof output === "string") return output;
    if (Array.isArray(output) && output.every((t) => typeof t === "string")) return output.join("");
    return null;
  }
  function classifyStatus(status) {
    if (status === 204) return "stop";
    if (status === 408 || status === 429) return "retry";
    if (status >= 400 && status < 500) return "fatal";
    return "retry";
  }
  function retryAfterMs(response) {
    const header = response && response.headers && response.headers.get ? response.headers.get("Retry-After") : null;
    const seconds = header === null || header === void 0 ? NaN : Number(header);
    return Number.isFinite(seconds) && seconds >= 0 ? seconds * 1e3 : 0;
  }
  var RelayError = class _RelayError extends Error {
    constructor(message, details = {}) {
      super(message);
      this.name = "RelayError";
      this.code = details.code || "error";
      this.status = details.status || null;
      this.kind = details.kind || "stream";
      this.retryAfterMs = details.retryAfterMs || 0;
      this.field = details.field || null;
    }
    static fromResponse(response, body, kind) {
      const message = body && typeof body.error === "string" && body.error ? body.error : "Relay answered " + response.status + ". Please try again.";
      return new _RelayError(message, {
        code: body && body.code || "http_" + response.status,
        status: response.status,
        kind,
        retryAfterMs: retryAfterMs(response),
        field: body && typeof body.field === "string" ? body.field : null
      });
    }
  };
  async function readJson(response) {
    try {
      return await response.json();
    } catch {
      return null;
    }
  }
  async function requestJson(fetchImpl, url, {
    method = "GET",
    body,
    headers = {},
    kind = "request",
    networkMessage = "Could not reach Relay. Check your connection and try again.",
    accept
  } = {}) {
    const init = { method, headers: { Accept: "application/json", ...headers } };
    if (body !== void 0) {
      init.body = JSON.stringify(body);
      init.headers["Content-Type"] = "application/json";
    }
    let response;
    try {
      response = await fetchImpl(url, init);
    } catch {
      throw new RelayError(networkMessage, { code: "network_error", kind });
    }
    const json = await readJson(response);
    if (!response.ok || !json || json.success === false || accept && !accept(json)) {
      throw RelayError.fromResponse(response, json, kind);
    }
    return json;
  }
  function newIdempotencyKey(env) {
    const crypto = env.crypto;
    if (crypto && typeof crypto.randomUUID === "function") return crypto.randomUUID();
    const bytes = new Uint8Array(16);
    if (crypto && typeof crypto.getRandomValues === "function") {
      crypto.getRandomValues(bytes);
    } else {
      for (let i = 0; i < bytes.length; i += 1) bytes[i] = Math.floor(env.random() * 256);
    }
    return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
  }
  function reportHandlerError(onHandlerError, error, where) {
    if (typeof onHandlerError === "function") {
      try {
        onHandlerError(error, where);
        return;
      } catch {
      }
    }
    if (typeof console !== "undefined" && console.warn) {
      console.warn("RelayClient: a handler threw in " + where + "; the stream goes on.", error);
    }
  }
  function callSafely(fn, args, where, onHandlerError) {
    if (typeof fn !== "function") return void 0;
    try {
      return fn(...args);
    } catch (err) {
      reportHandlerError(onHandlerError, err, where);
      return void 0;
    }
  }
  function resolveEnvironment(options = {}) {
    const g = typeof globalThis !== "undefined" ? globalThis : {};
    const pick = (name, fallback) => Object.prototype.hasOwnProperty.call(options, name) ? options[name] : fallback;
    return {
      EventSource: pick("EventSource", g.EventSource),
      fetch: pick("fetch", g.fetch ? g.fetch.bind(g) : void 0),
      setTimeout: pick("setTimeout", g.setTimeout ? g.setTimeout.bind(g) : void 0),
      clearTimeout: pick("clearTimeout", g.clearTimeout ? g.clearTimeout.bind(g) : void 0),
      random: pick("random", Math.random),
      now: pick("now", Date.now),
      crypto: pick("crypto", g.crypto),
      document: pick("document", g.document),
      window: pick("window", g.window),
      navigator: pick("navigator", g.navigator),
      AbortController: pick("AbortController", g.AbortController),
      BroadcastChannel: pick("BroadcastChannel", g.BroadcastChannel),
      locks: pick("locks", g.navigator && g.navigator.locks ? g.navigator.locks : void 0)
    };
  }
  function codePointLength(text) {
    let count = 0;
    for (let i = 0; i < text.length; i += 1) {
      const unit = text.charCodeAt(i);
      if (unit >= 55296 && unit <= 56319 && i + 1 < text.length) {
        const next = text.charCodeAt(i + 1);
        if (next >= 56320 && next <= 57343) i += 1;
      }
      count += 1;
    }
    return count;
  }
  function dropCodePoints(text, points) {
    let i = 0;
    for (let n = 0; n < points && i < text.length; n += 1) {
      const unit = text.charCodeAt(i);
      i += unit >= 55296 && unit <= 56319 && i + 1 < text.length ? 2 : 1;
    }
    return text.slice(i);
  }
  var LogBook = class {
    constructor() {
      this.text = null;
      this.offset = 0;
      this.length = 0;
    }
    applySnapshot(snapshot) {
      const logs = snapshot.logs;
      if (typeof logs !== "string") {
        if (logs === void 0 && this.text === null) return this.reset("", 0);
        return false;
      }
      const offset = typeof snapshot.logs_offset === "number" ? snapshot.logs_offset : 0;
      if (offset === this.offset && logs === this.text) return false;
      return this.reset(logs, offset);
    }
    applyDelta(delta) {
      if (!delta || typeof delta.text !== "string" || typeof delta.offset !== "number") return false;
      if (this.text === null) return this.reset(delta.text, delta.offset);
      if (delta.offset > this.length) return this.reset(delta.text, delta.offset);
      const fresh = dropCodePoints(delta.text, this.length - delta.offset);
      if (fresh === "") return false;
      this.text += fresh;
      this.length += codePointLength(fresh);
      return true;
    }
    reset(text, offset) {
      this.text = text;
      this.offset = offset;
      this.length = offset + codePointLength(text);
      return true;
    }
  };

  // static/client/connection.js
  var EVENTSOURCE_CLOSED = 2;
  var StreamConnection = class {
    /**
     * options: env (from resolveEnvironment), buildUrl(lastEventId) → URL,
     * onEvent(type, data, lastEventId), onState({state, attempt, nextRetryAt}),
     * onStop(reason, error) with reason "ended" | "fatal" | "exhausted",
     * heartbeatMs, stallMs, retryBaseMs, retryMaxMs, maxAttempts, onHandlerError.
     */
    constructor(options) {
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
      this.lastEventId = options.lastEventId || "";
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
    start() {
      if (this.finished || this.state !== "idle") return;
      this.listenToPage();
      this.open();
    }
    /** Reopen now with a freshly built URL (new watch list, or a nudge), keeping the attempt count. */
    reconnectNow() {
      if (this.finished) return;
      this.dropSource();
      this.open();
    }
    close() {
      if (this.finished) return;
      this.teardown();
      this.setState("closed");
    }
    teardown() {
      this.finished = true;
      this.generation += 1;
      this.dropSource();
      this.clearRetryTimer();
      this.stopListeningToPage();
      this.nextRetryAt = null;
    }
    finish(reason, error) {
      if (this.finished) return;
      this.teardown();
      this.setState(reason === "ended" ? "closed" : "failed");
      this.callOut(this.onStop, [reason, error || null], "onStop");
    }
    open() {
      this.clearRetryTimer();
      this.nextRetryAt = null;
      const url = this.buildUrl(this.lastEventId);
      this.url = url;
      const source = new this.env.EventSource(url);
      this.source = source;
      this.bindSource(source);
      this.touch();
      this.setState(this.attempt > 0 ? "reconnecting" : "connecting");
    }
    bindSource(source) {
      const listeners = {
        open: () => this.handleOpen(source),
        error: () => this.handleError(source)
      };
      for (const type of STREAM_EVENT_TYPES) {
        listeners[type] = (event) => this.handleEvent(source, type, event);
      }
      for (const type of Object.keys(listeners)) source.addEventListener(type, listeners[type]);
      this.sourceListeners = listeners;
    }
    dropSource() {
      const source = this.source;
      const listeners = this.sourceListeners;
      this.source = null;
      this.sourceListeners = null;
      this.clearWatchdog();
      if (!source) return;
      for (const type of Object.keys(listeners)) source.removeEventListener(type, listeners[type]);
      source.close();
    }
    handleOpen(source) {
      if (source !== this.source) return;
      this.touch();
      this.setState("open");
    }
    handleEvent(source, type, event) {
      if (source !== this.source) return;
      this.touch();
      if (typeof event.lastEventId === "string" && event.lastEventId !== "") {
        this.lastEventId = event.lastEventId;
      }
      let data;
      try {
        data = JSON.parse(event.data);
      } catch (err) {
        reportHandlerError(this.onHandlerError, err, "parsing a '" + type + "' event");
        return;
      }
      this.markHealthy();
      this.callOut(this.onEvent, [type, data, this.lastEventId], "on " + type);
    }
    /** A parsed server event proves the stream works: forget past failures. */
    markHealthy() {
      if (this.attempt === 0 && this.state === "open") return;
      this.attempt = 0;
      this.setState("open");
    }
    handleError(source) {
      if (source !== this.source) return;
      const browserGaveUp = source.readyState === EVENTSOURCE_CLOSED;
      const url = this.url;
      this.dropSource();
      if (browserGaveUp) {
        this.probe(url);
      } else {
        this.retryLater(0);
      }
    }
    /** Ask the URL once, with fetch, why the browser gave up on it. */
    probe(url) {
      const generation = this.generation;
      const controller = this.env.AbortController ? new this.env.AbortController() : null;
      this.setState("reconnecting");
      Promise.resolve().then(() => this.env.fetch(url, {
        headers: { Accept: "text/event-stream" },
        cache: "no-store",
        signal: controller ? controller.signal : void 0
      })).then(async (response) => {
        if (response.status === 200 && controller) controller.abort();
        const verdict = classifyStatus(response.status);
        let body = null;
        if (verdict === "fatal") {
          try {
            body = await response.json();
          } catch {
            body = null;
          }
        }
        if (generation !== this.generation) return;
        this.actOnProbe(verdict, response, body);
      }).catch(() => {
        if (generation !== this.generation) return;
        this.retryLater(0);
      });
    }
    actOnProbe(verdict, response, body) {
      if (verdict === "stop") {
        this.finish("ended");
      } else if (verdict === "fatal") {
        this.finish("fatal", RelayError.fromResponse(response, body, "stream"));
      } else {
        this.retryLater(retryAfterMs(response));
      }
    }
    /** Count a failed attempt and schedule the next one, or give up at the limit. */
    retryLater(minimumDelayMs) {
      if (this.finished) return;
      this.clearRetryTimer();
      if (!this.isOnline()) {
        this.scheduleOpen(this.retryMaxMs, "offline");
        return;
      }
      this.attempt += 1;
      if (this.attempt > this.maxAttempts) {
        this.attempt = this.maxAttempts;
        this.finish("exhausted", new RelayError(
          "Lost the connection to Relay after " + this.maxAttempts + " attempts.",
          { code: "reconnect_limit", kind: "stream" }
        ));
        return;
      }
      const delay = Math.max(
        minimumDelayMs || 0,
        backoffDelay(this.attempt, this.retryBaseMs, this.retryMaxMs, this.env.random)
      );
      this.scheduleOpen(delay, "reconnecting");
    }
    scheduleOpen(delay, state) {
      this.clearRetryTimer();
      this.nextRetryAt = this.env.now() + delay;
      this.retryTimer = this.env.setTimeout(() => {
        this.retryTimer = null;
        this.open();
      }, delay);
      this.setState(state);
    }
    clearRetryTimer() {
      if (this.retryTimer !== null) {
        this.env.clearTimeout(this.retryTimer);
        this.retryTimer = null;
      }
    }
    /** Note that bytes arrived and restart the stall watchdog. */
    touch() {
      this.lastActivityAt = this.env.now();
      this.clearWatchdog();
      this.watchdogTimer = this.env.setTimeout(() => {
        this.watchdogTimer = null;
        this.handleStall();
      }, this.stallMs);
    }
    clearWatchdog() {
      if (this.watchdogTimer !== null) {
        this.env.clearTimeout(this.watchdogTimer);
        this.watchdogTimer = null;
      }
    }
    handleStall() {
      if (!this.source) return;
      const hadOpened = this.state === "open";
      this.dropSource();
      if (hadOpened) {
        this.open();
      } else {
        this.retryLater(0);
      }
    }
    isOnline() {
      const nav = this.env.navigator;
      return !(nav && nav.onLine === false);
    }
    /** Back in view or back online: do not sit out a backoff delay or a dead socket. */
    handleWakeUp() {
      if (this.finished) return;
      if (this.retryTimer !== null || this.state === "offline") {
        this.open();
      } else if (this.source && this.env.now() - this.lastActivityAt >= this.stallMs) {
        this.handleStall();
      }
    }
    listenToPage() {
      const doc = this.env.document;
      const win = this.env.window;
      if (doc && doc.addEventListener) {
        this.addPageListener(doc, "visibilitychange", () => {
          if (doc.visibilityState === "visible") this.handleWakeUp();
        });
      }
      if (win && win.addEventListener) this.addPageListener(win, "online", () => this.handleWakeUp());
    }
    addPageListener(target, type, listener) {
      target.addEventListener(type, listener);
      this.pageListeners.push({ target, type, listener });
    }
    stopListeningToPage() {
      for (const entry of this.pageListeners) entry.target.removeEventListener(entry.type, entry.listener);
      this.pageListeners = [];
    }
    setState(state) {
      this.state = state;
      this.callOut(this.onState, [this.describe()], "onState");
    }
    describe() {
      return { state: this.state, attempt: this.attempt, nextRetryAt: this.nextRetryAt };
    }
    callOut(fn, args, where) {
      callSafely(fn, args, where, this.onHandlerError);
    }
  };

  // static/client/client.js
  var CALLBACK_NAMES = Object.freeze([
    "onState",
    "onStatus",
    "onProgress",
    "onOutput",
    "onLogs",
    "onSnapshot",
    "onConnection",
    "onUpstream",
    "onSuccess",
    "onError"
  ]);
  var RelayClient = class {
    /**
     * options: apiRoot, multiplex, grant, createAttempts, heartbeatMs, stallMs,
     * retryBaseMs, retryMaxMs, maxAttempts, onHandlerError, the callbacks in CALLBACK_NAMES,
     * and the injectable EventSource, fetch, setTimeout, clearTimeout, random,
     * now, crypto, document, window, navigator, AbortController.
     */
    constructor(options = {}) {
      this.options = options;
      this.env = resolveEnvironment(options);
      this.handlers = {};
      for (const name of CALLBACK_NAMES) {
        if (typeof options[name] === "function") this.handlers[name] = options[name];
      }
      this.apiRoot = options.apiRoot || "";
      this.multiplex = options.multiplex || null;
      this.phase = "idle";
      this.status = null;
      this.snapshot = null;
      this.prediction = null;
      this.error = null;
      this.connection = { state: "idle", attempt: 0, nextRetryAt: null };
      this.progress = null;
      this.logBook = new LogBook();
      this.outputValue = null;
      this.text = "";
      this.upstream = { state: "ok", error: null, retryIn: null };
      this.lastEventId = "";
      this.stream = null;
      this.cancelRequested = false;
      this.closed = false;
      this.idempotencyKey = null;
    }
    /** The log as reassembled so far (from `logsOffset` on), or null before any. */
    get logs() {
      return this.logBook.text;
    }
    /** Where `logs` starts in the full log, in code points (0 when it is all of it). */
    get logsOffset() {
      return this.logBook.offset;
    }
    /** The full log's URL (GET /api/predictions/<id>/logs?token=…), once following. */
    get logsUrl() {
      return this.prediction && this.prediction.stream_url ? logsUrlFromStreamUrl(this.prediction.stream_url) : null;
    }
    get state() {
      return {
        phase: this.phase,
        status: this.status,
        id: this.prediction ? this.prediction.id : null,
        attempt: this.connection.attempt,
        nextRetryAt: this.connection.nextRetryAt,
        connection: this.connection.state,
        error: this.error
      };
    }
    /**
     * POST the prediction, then follow it. Resolves with the create answer; rejects with a RelayError.
     *
     * The POST carries a fresh random `Idempotency-Key` (kept as `idempotencyKey`). When the POST
     * fails before any answer arrives (a network error: the server may or may not have created it),
     * it is sent again with the same key, up to `createAttempts` times in all, so the server answers
     * the retry with the first create instead of creating a second prediction. A refusal (any HTTP
     * answer) is never re-sent. With `options.grant` the POST carries `Authorization: Relay-Grant`.
     */
    async start(model, input) {
      var _a, _b, _c;
      if (this.phase !== "idle" || this.closed) {
        throw new Error("start() is for a new, idle RelayClient");
      }
      this.setPhase("submitting");
      this.idempotencyKey = newIdempotencyKey(this.env);
      const headers = { "Idempotency-Key": this.idempotencyKey };
      if (this.options.grant) headers.Authorization = "Relay-Grant " + this.options.grant;
      const attempts = Math.max(1, Number((_a = this.options.createAttempts) != null ? _a : DEFAULTS.createAttempts) || 1);
      let created;
      for (let attempt = 1; ; attempt += 1) {
        try {
          created = await requestJson(this.env.fetch, this.apiRoot + "/api/predictions", {
            method: "POST",
            body: { model, input },
            headers,
            kind: "request",
            accept: (body) => Boolean(body.stream_url)
          });
          break;
        } catch (error) {
          if (error.code !== "network_error" || attempt >= attempts || this.closed) {
            this.fail(error);
            throw error;
          }
        }
        const base = (_b = this.options.retryBaseMs) != null ? _b : DEFAULTS.retryBaseMs;
        const ceiling = (_c = this.options.retryMaxMs) != null ? _c : DEFAULTS.retryMaxMs;
        const delay = Math.max(1, backoffDelay(attempt, base, ceiling, this.env.random));
        await new Promise((resolve) => this.env.setTimeout(resolve, delay));
        if (this.closed) throw new RelayError("The create was given up: the client was closed.", { code: "closed", kind: "request" });
      }
      if (this.closed) return created;
      this.prediction = created;
      this.setStatus(created.status || "starting", null);
      this.follow(created.stream_url, { id: created.id, cancelUrl: created.cancel_url });
      if (this.cancelRequested) this.cancel().catch(() => {
      });
      return created;
    }
    /** Follow a prediction's stream (from start(), or a stream_url obtained elsewhere, from `lastEventId` when given). */
    follow(streamUrl, details = {}) {
      if (this.closed) throw new Error("RelayClient is closed");
      if (this.stream || isTerminalPhase(this.phase)) return;
      const id = details.id || predictionIdFromStreamUrl(streamUrl);
      this.prediction = this.prediction || { id, status: null };
      this.prediction.id = this.prediction.id || id;
      this.prediction.stream_url = streamUrl;
      this.prediction.cancel_url = details.cancelUrl || this.prediction.cancel_url || cancelUrlFromStreamUrl(streamUrl);
      this.lastEventId = details.lastEventId || this.lastEventId || "";
      this.setPhase("streaming");
      if (this.multiplex) {
        this.stream = { multiplexed: true };
        this.multiplex.watch(this, streamUrl, this.prediction.id, this.lastEventId);
      } else {
        this.stream = this.createOwnStream(streamUrl);
        this.stream.start();
      }
    }
    createOwnStream(streamUrl) {
      const options = this.options;
      return new StreamConnection({
        env: this.env,
        heartbeatMs: options.heartbeatMs,
        stallMs: options.stallMs,
        retryBaseMs: options.retryBaseMs,
        retryMaxMs: options.retryMaxMs,
        maxAttempts: options.maxAttempts,
        onHandlerError: options.onHandlerError,
        lastEventId: this.lastEventId,
        buildUrl: (lastEventId) => withQuery(streamUrl, { lastEventId: lastEventId || null }),
        onEvent: (type, data, lastEventId) => this.receive(type, data, lastEventId),
        onState: (info) => this.connectionChanged(info),
        onStop: (reason, error) => this.streamStopped(reason, error)
      });
    }
    /** Ask the server to cancel. Resolves with its answer; the outcome itself arrives on the stream. */
    async cancel() {
      if (this.closed || isTerminalPhase(this.phase)) return null;
      if (this.phase === "submitting") {
        this.cancelRequested = true;
        return null;
      }
      if (!this.prediction || !this.prediction.cancel_url) return null;
      return requestJson(this.env.fetch, this.prediction.cancel_url, {
        method: "POST",
        kind: "cancel",
        networkMessage: "Could not reach Relay to cancel. Try again."
      });
    }
    /** Stop following and calling back. Safe to call any number of times. */
    close() {
      if (this.closed) return;
      this.detachStream();
      this.closed = true;
      this.handlers = {};
    }
    detachStream() {
      const stream = this.stream;
      this.stream = null;
      if (!stream) return;
      if (stream.multiplexed) {
        this.multiplex.release(this);
      } else {
        stream.close();
      }
    }
    /* Called by the stream (own or shared) for each parsed event, with the prediction's event id. */
    receive(type, data, position) {
      if (this.closed || isTerminalPhase(this.phase) || !data) return;
      if (typeof position === "string" && position !== "") this.lastEventId = position;
      if (type === "message") this.applySnapshot(data);
      else if (type === "output") this.applyOutputChunk(data);
      else if (type === "logs") this.applyLogDelta(data);
      else if (type === "upstream") this.applyUpstream(data);
      else if (type === "done") this.applyDone(data);
    }
    applySnapshot(snapshot) {
      this.snapshot = snapshot;
      this.setStatus(snapshot.status, snapshot);
      this.applyProgress(snapshot);
      if (this.logBook.applySnapshot(snapshot)) this.emit("onLogs", this.logBook.text, snapshot);
      this.applyOutput(snapshot);
      this.emit("onSnapshot", snapshot);
      if (isTerminalStatus(snapshot.status)) this.settle(snapshot.status, snapshot);
    }
    applyLogDelta(delta) {
      if (this.logBook.applyDelta(delta)) this.emit("onLogs", this.logBook.text, this.snapshot);
    }
    setStatus(status, snapshot) {
      if (!status || status === this.status) return;
      this.status = status;
      if (this.prediction) this.prediction.status = status;
      this.emit("onStatus", status, snapshot);
    }
    /**
     * Progress never moves backwards within one stage: a lower percent with the
     * same step label is a late or re-derived reading, so the shown one stays.
     * A new step label starts a new stage. Success shows 100%.
     */
    applyProgress(snapshot) {
      let next = snapshot.progress || null;
      const shown = this.progress;
      if (snapshot.status === "succeeded") {
        next = { ...shown || {}, ...next || {}, percent: 100, eta_seconds: 0 };
      }
      if (!next) return;
      const sameStage = shown && (shown.step || "") === (next.step || "");
      if (sameStage && typeof shown.percent === "number" && (typeof next.percent !== "number" || next.percent < shown.percent)) {
        return;
      }
      if (sameJson(shown, next)) return;
      this.progress = next;
      this.emit("onProgress", next, snapshot);
    }
    /**
     * The snapshot's output is authoritative. While running, text that the
     * deltas already carried past it is kept, so a snapshot older than the
     * latest chunk does not make the text shrink and regrow.
     */
    applyOutput(snapshot) {
      const value = snapshot.output === void 0 ? null : snapshot.output;
      if (sameJson(value, this.outputValue)) return;
      this.outputValue = value;
      const text = textOfOutput(value);
      if (text !== null) {
        const aheadByDeltas = !isTerminalStatus(snapshot.status) && this.text.length > text.length && this.text.startsWith(text);
        this.text = aheadByDeltas ? this.text : text;
      }
      this.emit("onOutput", { value, text: text === null ? null : this.text, delta: null });
    }
    applyOutputChunk(data) {
      if (typeof data.text !== "string" || data.text === "") return;
      this.text += data.text;
      this.emit("onOutput", { value: this.outputValue, text: this.text, delta: data.text });
    }
    applyUpstream(data) {
      this.upstream = {
        state: data.state === "degraded" ? "degraded" : "ok",
        error: data.error || null,
        retryIn: typeof data.retry_in === "number" ? data.retry_in : null
      };
      this.emit("onUpstream", this.upstream);
    }
    applyDone(data) {
      const status = isTerminalStatus(data.status) ? data.status : this.status;
      if (!isTerminalStatus(status)) return;
      const snapshot = { ...this.snapshot || {}, status };
      this.setStatus(status, snapshot);
      this.settle(status, snapshot);
    }
    settle(status, snapshot) {
      this.detachStream();
      if (this.upstream.state !== "ok") this.applyUpstream({ state: "ok" });
      this.setPhase(TERMINAL_PHASE_BY_STATUS[status]);
      if (status === "succeeded") {
        this.emit("onSuccess", snapshot);
      } else if (status !== "canceled") {
        this.error = new RelayError(
          snapshot.error || "The prediction " + status + ".",
          { code: "prediction_" + status, kind: "prediction" }
        );
        this.emit("onError", this.error);
      }
    }
    /* Called by the stream when it has ended for good without a terminal event. */
    streamStopped(reason, error) {
      this.stream = null;
      if (this.closed || isTerminalPhase(this.phase)) return;
      this.fail(error || new RelayError(
        "The stream ended before the prediction finished.",
        { code: "stream_ended", kind: "stream" }
      ));
    }
    fail(error) {
      this.error = error;
      this.setPhase("error");
      this.emit("onError", error);
    }
    /* Called by the stream whenever the connection's state changes. */
    connectionChanged(info) {
      this.connection = info;
      if (this.phase === "streaming" || this.phase === "reconnecting") {
        const interrupted = info.state === "reconnecting" || info.state === "offline";
        this.phase = interrupted ? "reconnecting" : "streaming";
      }
      this.emit("onConnection", info);
      this.emit("onState", this.state);
    }
    setPhase(phase) {
      if (phase === this.phase) return;
      this.phase = phase;
      this.emit("onState", this.state);
    }
    emit(name, ...args) {
      callSafely(this.handlers[name], args, name, this.options.onHandlerError);
    }
  };

  // static/client/multiplex.js
  var RelayMultiplex = class {
    /** options: apiRoot or eventsUrl, onConnection(info), heartbeatMs, stallMs, retry…, maxAttempts, onHandlerError, env fakes. */
    constructor(options = {}) {
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
    /** Follow `watcher`'s prediction on the shared connection, from `position` when one is known. */
    watch(watcher, streamUrl, predictionId, position = "") {
      this.watchAll([[watcher, streamUrl, predictionId, position]]);
    }
    /** Watch several at once ([watcher, streamUrl, predictionId, position] each), (re)building the stream once. */
    watchAll(list) {
      if (this.closed) throw new Error("RelayMultiplex is closed");
      for (const [watcher, streamUrl, predictionId, position] of list) {
        const id = predictionId || predictionIdFromStreamUrl(streamUrl);
        this.entries.push({
          client: watcher,
          id,
          token: queryParam(streamUrl, "token"),
          streamUrl,
          position: position || "",
          done: false
        });
      }
      this.refreshConnection();
      for (const [watcher] of list) watcher.connectionChanged(this.connectionInfo);
    }
    /** Stop following `watcher`; the next (re)connection leaves it out. */
    release(watcher) {
      for (const entry of this.entries) {
        if (entry.client === watcher) entry.done = true;
      }
      this.entries = this.entries.filter((entry) => !entry.done || this.watchOrder.includes(entry));
      if (this.activeEntries().length === 0) this.dropConnection("idle");
    }
    activeEntries() {
      return this.entries.filter((entry) => !entry.done);
    }
    refreshConnection() {
      if (this.activeEntries().length === 0) return;
      if (!this.connection) {
        this.connection = this.createConnection();
        this.connection.start();
        return;
      }
      const state = this.connection.state;
      if (state === "open" || state === "connecting") this.connection.reconnectNow();
    }
    /** Reconnect at once, resetting nothing but the wait (a "Retry now" button). */
    reconnectNow() {
      if (this.connection) {
        this.connection.reconnectNow();
      } else {
        this.refreshConnection();
      }
    }
    createConnection() {
      const connection = new StreamConnection({
        env: this.env,
        heartbeatMs: this.options.heartbeatMs,
        stallMs: this.options.stallMs,
        retryBaseMs: this.options.retryBaseMs,
        retryMaxMs: this.options.retryMaxMs,
        maxAttempts: this.options.maxAttempts,
        onHandlerError: this.options.onHandlerError,
        buildUrl: () => this.buildUrl(),
        onEvent: (type, data, eventId) => this.route(connection, type, data, eventId),
        onState: (info) => {
          if (connection === this.connection) this.announce(info);
        },
        onStop: (reason, error) => this.handleStop(connection, reason, error)
      });
      return connection;
    }
    buildUrl() {
      const active = this.activeEntries();
      this.watchOrder = active;
      this.entries = active;
      const positions = active.map((entry) => entry.position);
      const hasPosition = positions.some((p) => p !== "");
      return withQuery(this.eventsUrl, {
        watch: active.map((entry) => entry.token),
        lastEventId: hasPosition ? composeEventId(positions) : null
      });
    }
    rememberPositions(eventId) {
      const parts = parseEventId(eventId, this.watchOrder.length);
      if (!parts) return;
      this.watchOrder.forEach((entry, index) => {
        if (parts[index] !== "") entry.position = parts[index];
      });
    }
    route(connection, type, data, eventId) {
      if (connection !== this.connection) return;
      this.rememberPositions(eventId);
      const entry = this.findEntry(data && data.id);
      if (!entry || entry.done) return;
      entry.client.receive(type, data, entry.position);
      if (type === "done") this.release(entry.client);
    }
    findEntry(id) {
      return this.entries.find((entry) => entry.id === id && !entry.done) || null;
    }
    handleStop(connection, reason, error) {
      if (connection !== this.connection) return;
      this.connection = null;
      const stopped = this.activeEntries();
      for (const entry of stopped) entry.done = true;
      this.announce({ state: reason === "ended" ? "idle" : "failed", attempt: 0, nextRetryAt: null });
      for (const entry of stopped) entry.client.streamStopped(reason, error);
    }
    dropConnection(state) {
      const connection = this.connection;
      this.connection = null;
      if (connection) connection.close();
      this.announce({ state, attempt: 0, nextRetryAt: null });
    }
    announce(info) {
      this.connectionInfo = info;
      for (const entry of this.activeEntries()) entry.client.connectionChanged(info);
      callSafely(this.onConnection, [info], "onConnection", this.options.onHandlerError);
    }
    close() {
      if (this.closed) return;
      this.closed = true;
      for (const entry of this.entries) entry.done = true;
      this.dropConnection("closed");
    }
  };

  // static/client/tabs.js
  var SEEN_LIMIT = 64;
  var HANDOVER_MS = 150;
  function newTabId(random) {
    return Math.floor(random() * 2 ** 48).toString(36) + Date.now().toString(36);
  }
  var RelayTabs = class {
    /** options: those of RelayMultiplex, plus `name` (the lock and channel; default from the events URL), BroadcastChannel and locks fakes. */
    constructor(options = {}) {
      this.options = options;
      this.env = options.env || resolveEnvironment(options);
      this.onConnection = options.onConnection || null;
      const eventsUrl = options.eventsUrl || (options.apiRoot || "") + "/api/events";
      this.name = options.name || "relay-events " + eventsUrl;
      this.tabId = newTabId(this.env.random);
      this.local = [];
      this.relays = /* @__PURE__ */ new Map();
      this.leader = false;
      this.leaderTab = null;
      this.inner = null;
      this.connectionInfo = { state: "idle", attempt: 0, nextRetryAt: null };
      this.closed = false;
      this.releaseLock = null;
      this.collecting = null;
      this.handoverTimer = null;
      this.shared = Boolean(this.env.BroadcastChannel && this.env.locks);
      if (!this.shared) {
        this.inner = new RelayMultiplex({ ...options, env: this.env });
        return;
      }
      this.channel = new this.env.BroadcastChannel(this.name);
      this.channel.onmessage = (event) => this.handleMessage(event.data);
      this.env.locks.request(this.name, () => new Promise((resolve) => {
        if (this.closed) {
          resolve();
          return;
        }
        this.releaseLock = resolve;
        this.becomeLeader();
      })).catch(() => {
      });
    }
    /** Whether this tab holds the stream (always true without sharing). */
    get isLeader() {
      return !this.shared || this.leader;
    }
    watch(client, streamUrl, predictionId, position = "") {
      if (this.closed) throw new Error("RelayTabs is closed");
      if (!this.shared) {
        this.inner.watch(client, streamUrl, predictionId, position);
        return;
      }
      const id = predictionId || predictionIdFromStreamUrl(streamUrl);
      const entry = { client, id, streamUrl, seen: position ? [position] : [] };
      this.local.push(entry);
      client.connectionChanged(this.connectionInfo);
      if (this.leader) {
        this.request({ tab: this.tabId, id, streamUrl, position });
      } else {
        this.post({ type: "watch", id, streamUrl, position });
      }
    }
    release(client) {
      if (!this.shared) {
        this.inner.release(client);
        return;
      }
      const mine = this.local.filter((entry) => entry.client === client);
      this.local = this.local.filter((entry) => entry.client !== client);
      for (const entry of mine) {
        if (this.local.some((other) => other.id === entry.id)) continue;
        if (this.leader) this.dropTab(this.tabId, entry.id);
        else this.post({ type: "release", id: entry.id });
      }
    }
    reconnectNow() {
      if (!this.shared || this.leader) this.inner.reconnectNow();
      else this.post({ type: "reconnect" });
    }
    close() {
      if (this.closed) return;
      this.closed = true;
      const watched = this.local;
      this.local = [];
      if (!this.shared) {
        this.inner.close();
        return;
      }
      if (!this.leader) {
        for (const entry of watched) this.post({ type: "release", id: entry.id });
      }
      if (this.handoverTimer) this.env.clearTimeout(this.handoverTimer);
      this.handoverTimer = null;
      if (this.inner) this.inner.close();
      this.inner = null;
      this.channel.close();
      if (this.releaseLock) this.releaseLock();
    }
    /* ---------------- leader ---------------- */
    /**
     * Take the stream over: ask every tab for its list, and open one stream for
     * them all after a short window (HANDOVER_MS) that collects the answers,
     * rather than rebuilding the stream once per answer.
     */
    becomeLeader() {
      this.leader = true;
      this.leaderTab = this.tabId;
      this.inner = new RelayMultiplex({ ...this.options, env: this.env, onConnection: (info) => this.leaderAnnounce(info) });
      this.collecting = this.local.map((entry) => ({
        tab: this.tabId,
        id: entry.id,
        streamUrl: entry.streamUrl,
        position: entry.client.lastEventId || ""
      }));
      this.post({ type: "leader" });
      this.handoverTimer = this.env.setTimeout(() => {
        this.handoverTimer = null;
        const requests = this.collecting;
        this.collecting = null;
        if (!this.closed) this.relayFor(requests);
      }, HANDOVER_MS);
    }
    request(request) {
      if (this.collecting) this.collecting.push(request);
      else this.relayFor([request]);
    }
    /** Watch each listed prediction for its tab, opening or rebuilding the stream once for the lot. */
    relayFor(requests) {
      const fresh = [];
      for (const request of requests) {
        const known = this.relays.get(request.id);
        if (known) {
          known.tabs.add(request.tab);
          continue;
        }
        const relay = { id: request.id, tabs: /* @__PURE__ */ new Set([request.tab]), watcher: null };
        relay.watcher = this.relayWatcher(relay);
        this.relays.set(request.id, relay);
        fresh.push([relay.watcher, request.streamUrl, request.id, request.position || ""]);
      }
      if (fresh.length > 0) this.inner.watchAll(fresh);
    }
    relayWatcher(relay) {
      return {
        receive: (eventType, data, position) => {
          if (eventType === "done") this.relays.delete(relay.id);
          this.post({ type: "event", id: relay.id, eventType, data, position });
          this.deliver(relay.id, eventType, data, position);
        },
        connectionChanged: () => {
        },
        streamStopped: (reason, error) => {
          this.relays.delete(relay.id);
          const plain = error ? { message: error.message, code: error.code, status: error.status, kind: error.kind } : null;
          this.post({ type: "stopped", id: relay.id, reason, error: plain });
          this.stopLocal(relay.id, reason, error);
        }
      };
    }
    dropTab(tab, id) {
      if (this.collecting) this.collecting = this.collecting.filter((r) => !(r.tab === tab && r.id === id));
      const relay = this.relays.get(id);
      if (!relay) return;
      relay.tabs.delete(tab);
      if (relay.tabs.size > 0) return;
      this.relays.delete(id);
      this.inner.release(relay.watcher);
    }
    leaderAnnounce(info) {
      this.post({ type: "connection", info });
      this.announce(info);
    }
    /* ---------------- every tab ---------------- */
    handleMessage(message) {
      if (this.closed || !message || typeof message !== "object" || message.from === this.tabId) return;
      if (this.leader) {
        if (message.type === "watch") {
          this.request({ tab: message.from, id: message.id, streamUrl: message.streamUrl, position: message.position });
          this.post({ type: "connection", info: this.connectionInfo });
        } else if (message.type === "release") {
          this.dropTab(message.from, message.id);
        } else if (message.type === "reconnect") {
          this.inner.reconnectNow();
        }
        return;
      }
      if (message.type === "leader") {
        this.leaderTab = message.from;
        for (const entry of this.local) {
          this.post({ type: "watch", id: entry.id, streamUrl: entry.streamUrl, position: entry.client.lastEventId || "" });
        }
      } else if (message.type === "event") {
        this.deliver(message.id, message.eventType, message.data, message.position);
      } else if (message.type === "connection") {
        this.announce(message.info);
      } else if (message.type === "stopped") {
        const error = message.error ? new RelayError(message.error.message, message.error) : null;
        this.stopLocal(message.id, message.reason, error);
      }
    }
    /** Hand an event to this tab's clients of prediction `id`, once per event id. */
    deliver(id, eventType, data, position) {
      for (const entry of this.local.filter((e) => e.id === id)) {
        if (position) {
          if (entry.seen.includes(position)) continue;
          entry.seen.push(position);
          if (entry.seen.length > SEEN_LIMIT) entry.seen.shift();
        }
        entry.client.receive(eventType, data, position);
      }
      if (eventType === "done") this.local = this.local.filter((e) => e.id !== id);
    }
    stopLocal(id, reason, error) {
      const stopped = this.local.filter((e) => e.id === id);
      this.local = this.local.filter((e) => e.id !== id);
      for (const entry of stopped) entry.client.streamStopped(reason, error);
    }
    announce(info) {
      this.connectionInfo = info;
      for (const entry of this.local) entry.client.connectionChanged(info);
      callSafely(this.onConnection, [info], "onConnection", this.options.onHandlerError);
    }
    post(message) {
      if (this.closed && message.type !== "release") return;
      try {
        this.channel.postMessage({ ...message, from: this.tabId });
      } catch {
      }
    }
  };

  // static/client/index.js
  Object.assign(RelayClient, {
    Multiplex: RelayMultiplex,
    Tabs: RelayTabs,
    StreamConnection,
    RelayError,
    LogBook,
    backoffDelay,
    composeEventId,
    parseEventId,
    isTerminalStatus,
    withQuery,
    requestJson
  });

  // static/client/classic.js
  globalThis.RelayClient = RelayClient;
})();
