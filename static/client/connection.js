/*
 * One reconnecting EventSource: StreamConnection.
 *
 * Every EventSource `error` closes the source and the connection decides what
 * next, instead of letting the browser retry on its own: one place owns the
 * backoff, the attempt count and the resume id. When the browser had already
 * given up (readyState CLOSED: a non-200 answer), one fetch of the same URL
 * tells 204 (stop), 4xx (fatal) and the rest (retry) apart.
 *
 * Attempts count consecutive failures. They reset only after a parsed server
 * event, never at `open`, so a server that accepts and then drops connections
 * still reaches the limit.
 *
 * The stall watchdog: EventSource hides comment lines, so the server's
 * heartbeats cannot feed it. It fires after 3.5 heartbeat intervals with no
 * event. If the connection had opened, the silence may just be a quiet
 * prediction: it reopens at once, resuming by id (no duplicates), and the
 * attempt count does not change. If it never opened, that is a failed attempt
 * like any other.
 *
 * States: idle, connecting, open, reconnecting, offline, closed, failed.
 */
import {
  DEFAULTS, STREAM_EVENT_TYPES, RelayError, backoffDelay, callSafely, classifyStatus,
  reportHandlerError, retryAfterMs,
} from "./wire.js";

const EVENTSOURCE_CLOSED = 2;

export class StreamConnection {
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
      error: () => this.handleError(source),
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
    Promise.resolve()
      .then(() => this.env.fetch(url, {
        headers: { Accept: "text/event-stream" },
        cache: "no-store",
        signal: controller ? controller.signal : undefined,
      }))
      .then(async (response) => {
        if (response.status === 200 && controller) controller.abort();
        const verdict = classifyStatus(response.status);
        let body = null;
        if (verdict === "fatal") {
          try { body = await response.json(); } catch { body = null; }
        }
        if (generation !== this.generation) return;
        this.actOnProbe(verdict, response, body);
      })
      .catch(() => {
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
      // Not counted as an attempt; the `online` event reconnects sooner, and
      // the slow timer covers a browser whose onLine flag is wrong.
      this.scheduleOpen(this.retryMaxMs, "offline");
      return;
    }
    this.attempt += 1;
    if (this.attempt > this.maxAttempts) {
      this.attempt = this.maxAttempts;
      this.finish("exhausted", new RelayError(
        "Lost the connection to Relay after " + this.maxAttempts + " attempts.",
        { code: "reconnect_limit", kind: "stream" },
      ));
      return;
    }
    const delay = Math.max(minimumDelayMs || 0,
      backoffDelay(this.attempt, this.retryBaseMs, this.retryMaxMs, this.env.random));
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
}
