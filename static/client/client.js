/*
 * One prediction, from its POST to its outcome: RelayClient.
 *
 * The state machine (RelayClient#phase):
 *   idle -> submitting -> streaming <-> reconnecting -> succeeded | failed | canceled | error
 * `aborted` (a deadline passed before the prediction started) ends in the
 * `failed` phase; the raw status "aborted" is still reported through onStatus.
 * `error` means the client could not learn the outcome: the POST was refused,
 * the stream answered 4xx, or reconnection gave up.
 *
 * The client follows its stream on its own StreamConnection, or on a shared
 * one (options.multiplex: a RelayMultiplex or a RelayTabs). Every callback
 * goes through emit(), which calls it safely: a throw in a handler is
 * reported (onHandlerError, else the console) and the stream goes on.
 */
import { StreamConnection } from "./connection.js";
import {
  DEFAULTS, LogBook, RelayError, TERMINAL_PHASE_BY_STATUS, backoffDelay, callSafely, cancelUrlFromStreamUrl, isTerminalPhase,
  isTerminalStatus, logsUrlFromStreamUrl, newIdempotencyKey, predictionIdFromStreamUrl, requestJson, resolveEnvironment, sameJson,
  textOfOutput, withQuery,
} from "./wire.js";

export const CALLBACK_NAMES = Object.freeze([
  "onState", "onStatus", "onProgress", "onOutput", "onLogs", "onSnapshot",
  "onConnection", "onUpstream", "onSuccess", "onError",
]);

export class RelayClient {
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
      error: this.error,
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
    if (this.phase !== "idle" || this.closed) {
      throw new Error("start() is for a new, idle RelayClient");
    }
    this.setPhase("submitting");
    this.idempotencyKey = newIdempotencyKey(this.env);
    const headers = { "Idempotency-Key": this.idempotencyKey };
    if (this.options.grant) headers.Authorization = "Relay-Grant " + this.options.grant;
    const attempts = Math.max(1, Number(this.options.createAttempts ?? DEFAULTS.createAttempts) || 1);
    let created;
    for (let attempt = 1; ; attempt += 1) {
      try {
        created = await requestJson(this.env.fetch, this.apiRoot + "/api/predictions", {
          method: "POST", body: { model, input }, headers, kind: "request", accept: (body) => Boolean(body.stream_url),
        });
        break;
      } catch (error) {
        if (error.code !== "network_error" || attempt >= attempts || this.closed) {
          this.fail(error);
          throw error;
        }
      }
      const base = this.options.retryBaseMs ?? DEFAULTS.retryBaseMs;
      const ceiling = this.options.retryMaxMs ?? DEFAULTS.retryMaxMs;
      const delay = Math.max(1, backoffDelay(attempt, base, ceiling, this.env.random));
      await new Promise((resolve) => this.env.setTimeout(resolve, delay));
      if (this.closed) throw new RelayError("The create was given up: the client was closed.", { code: "closed", kind: "request" });
    }
    if (this.closed) return created;
    this.prediction = created;
    this.setStatus(created.status || "starting", null);
    this.follow(created.stream_url, { id: created.id, cancelUrl: created.cancel_url });
    if (this.cancelRequested) this.cancel().catch(() => {});
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
      onStop: (reason, error) => this.streamStopped(reason, error),
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
      method: "POST", kind: "cancel", networkMessage: "Could not reach Relay to cancel. Try again.",
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
      next = { ...(shown || {}), ...(next || {}), percent: 100, eta_seconds: 0 };
    }
    if (!next) return;
    const sameStage = shown && (shown.step || "") === (next.step || "");
    if (sameStage && typeof shown.percent === "number"
      && (typeof next.percent !== "number" || next.percent < shown.percent)) {
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
    const value = snapshot.output === undefined ? null : snapshot.output;
    if (sameJson(value, this.outputValue)) return;
    this.outputValue = value;
    const text = textOfOutput(value);
    if (text !== null) {
      const aheadByDeltas = !isTerminalStatus(snapshot.status)
        && this.text.length > text.length && this.text.startsWith(text);
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
      retryIn: typeof data.retry_in === "number" ? data.retry_in : null,
    };
    this.emit("onUpstream", this.upstream);
  }

  applyDone(data) {
    const status = isTerminalStatus(data.status) ? data.status : this.status;
    if (!isTerminalStatus(status)) return;
    const snapshot = { ...(this.snapshot || {}), status };
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
      this.error = new RelayError(snapshot.error || "The prediction " + status + ".",
        { code: "prediction_" + status, kind: "prediction" });
      this.emit("onError", this.error);
    }
  }

  /* Called by the stream when it has ended for good without a terminal event. */
  streamStopped(reason, error) {
    this.stream = null;
    if (this.closed || isTerminalPhase(this.phase)) return;
    this.fail(error || new RelayError("The stream ended before the prediction finished.",
      { code: "stream_ended", kind: "stream" }));
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
}
