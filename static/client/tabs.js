/*
 * One event stream per browser: RelayTabs, a drop-in for RelayMultiplex that
 * tabs of one origin share.
 *
 * Every tab asks navigator.locks for one lock; the tab holding it is the
 * leader and alone opens the /api/events connection (a RelayMultiplex). The
 * other tabs send the predictions they follow (stream URL and the last event
 * id they saw) over a BroadcastChannel; the leader watches them and relays
 * every event, with that prediction's event id, and its connection state.
 * When the leader's tab closes, the browser frees the lock, the next tab in
 * line becomes leader, asks every tab for its list ("leader" message) and
 * resumes each prediction from the last event id that tab saw: nothing is
 * lost. A tab ignores an event whose id it already delivered (a handover
 * race can send one twice): nothing is repeated.
 *
 * Without BroadcastChannel or navigator.locks it is a plain RelayMultiplex.
 *
 * Messages, all {from: tabId, type, ...}:
 *   follower -> leader  watch {id, streamUrl, position}, release {id}, reconnect
 *   leader -> all       leader, event {id, eventType, data, position},
 *                       connection {info}, stopped {id, reason, error}
 */
import { RelayMultiplex } from "./multiplex.js";
import { RelayError, callSafely, predictionIdFromStreamUrl, resolveEnvironment } from "./wire.js";

const SEEN_LIMIT = 64;
const HANDOVER_MS = 150;

function newTabId(random) {
  return Math.floor(random() * 2 ** 48).toString(36) + Date.now().toString(36);
}

export class RelayTabs {
  /** options: those of RelayMultiplex, plus `name` (the lock and channel; default from the events URL), BroadcastChannel and locks fakes. */
  constructor(options = {}) {
    this.options = options;
    this.env = options.env || resolveEnvironment(options);
    this.onConnection = options.onConnection || null;
    const eventsUrl = options.eventsUrl || (options.apiRoot || "") + "/api/events";
    this.name = options.name || "relay-events " + eventsUrl;
    this.tabId = newTabId(this.env.random);
    this.local = [];            // {client, id, streamUrl, seen: string[]}
    this.relays = new Map();    // leader only: id -> {watcher, tabs: Set}
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
    })).catch(() => {});
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
      tab: this.tabId, id: entry.id, streamUrl: entry.streamUrl, position: entry.client.lastEventId || "",
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
      const relay = { id: request.id, tabs: new Set([request.tab]), watcher: null };
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
      connectionChanged: () => {},
      streamStopped: (reason, error) => {
        this.relays.delete(relay.id);
        const plain = error ? { message: error.message, code: error.code, status: error.status, kind: error.kind } : null;
        this.post({ type: "stopped", id: relay.id, reason, error: plain });
        this.stopLocal(relay.id, reason, error);
      },
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
      // a closed channel: the tab is going away
    }
  }
}
