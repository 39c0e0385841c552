/*
 * Several predictions over one `/api/events?watch=…` connection
 * (RelayMultiplex), because a browser opens only about six connections per host.
 *
 * Each watched prediction keeps its own position (the last per-prediction
 * event id seen). Whenever the connection is (re)built, the watch list is the
 * predictions still running, in a stable order, and `lastEventId` is composed
 * from their positions (empty for one with nothing received yet).
 *
 * A watcher is anything with receive(type, data, position),
 * connectionChanged(info) and streamStopped(reason, error): a RelayClient, or
 * a stand-in for a client in another tab (tabs.js). watch() may start from a
 * known position, so a stream handed over from another tab resumes exactly.
 */
import { StreamConnection } from "./connection.js";
import {
  callSafely, composeEventId, parseEventId, predictionIdFromStreamUrl, queryParam, resolveEnvironment,
  withQuery,
} from "./wire.js";

export class RelayMultiplex {
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
      this.entries.push({ client: watcher, id, token: queryParam(streamUrl, "token"), streamUrl,
        position: position || "", done: false });
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
    // Otherwise a retry is pending: the new prediction joins that attempt.
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
      onState: (info) => { if (connection === this.connection) this.announce(info); },
      onStop: (reason, error) => this.handleStop(connection, reason, error),
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
      lastEventId: hasPosition ? composeEventId(positions) : null,
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
}
