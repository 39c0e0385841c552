// Test doubles for the browser facilities RelayClient takes through its
// options: an EventSource driven by hand, a clock whose timers run only when
// the test advances it, and a fetch that answers from a script.

/** A fresh EventSource class per test, so instances never leak across tests. */
export function makeEventSourceClass() {
  class FakeEventSource {
    constructor(url) {
      this.url = url;
      this.readyState = 0;
      this.closed = false;
      this.lastEventIdBuffer = "";
      this.listeners = new Map();
      FakeEventSource.instances.push(this);
    }

    addEventListener(type, listener) {
      if (!this.listeners.has(type)) this.listeners.set(type, new Set());
      this.listeners.get(type).add(listener);
    }

    removeEventListener(type, listener) {
      this.listeners.get(type)?.delete(listener);
    }

    listenerCount() {
      let count = 0;
      for (const set of this.listeners.values()) count += set.size;
      return count;
    }

    close() {
      this.readyState = 2;
      this.closed = true;
    }

    dispatch(type, event) {
      for (const listener of [...(this.listeners.get(type) ?? [])]) listener(event);
    }

    open() {
      this.readyState = 1;
      this.dispatch("open", { type: "open" });
    }

    /** Deliver a server event; `data` objects are sent as JSON, strings as is. */
    send(type, data, id) {
      if (id !== undefined) this.lastEventIdBuffer = id;
      const payload = typeof data === "string" ? data : JSON.stringify(data);
      this.dispatch(type, { type, data: payload, lastEventId: this.lastEventIdBuffer });
    }

    /** A network error or the server ending the body: the browser would retry. */
    drop() {
      this.readyState = 0;
      this.dispatch("error", { type: "error" });
    }

    /** A non-200 answer (204, 4xx, 5xx): the browser gives up for good. */
    refuse() {
      this.readyState = 2;
      this.dispatch("error", { type: "error" });
    }
  }
  FakeEventSource.instances = [];
  FakeEventSource.latest = () => FakeEventSource.instances[FakeEventSource.instances.length - 1];
  return FakeEventSource;
}

/** Timers that fire only inside advance(), in due order. */
export class FakeClock {
  constructor() {
    this.time = 1_000_000;
    this.timers = new Map();
    this.nextId = 1;
    this.delays = [];
    this.setTimeout = (fn, ms) => {
      const id = this.nextId++;
      this.timers.set(id, { at: this.time + ms, fn });
      this.delays.push(ms);
      return id;
    };
    this.clearTimeout = (id) => { this.timers.delete(id); };
    this.now = () => this.time;
  }

  get pending() {
    return this.timers.size;
  }

  advance(ms) {
    const target = this.time + ms;
    for (;;) {
      let dueId = null;
      let due = null;
      for (const [id, timer] of this.timers) {
        if (timer.at <= target && (due === null || timer.at < due.at)) {
          dueId = id;
          due = timer;
        }
      }
      if (due === null) break;
      this.timers.delete(dueId);
      this.time = due.at;
      due.fn();
    }
    this.time = target;
  }
}

/** A fetch answering from `route(url, init)` → {status, body, headers}; records every call. */
export function makeFetch(route) {
  const calls = [];
  const fetch = async (url, init = {}) => {
    calls.push({ url, method: init.method || "GET", body: init.body, headers: { ...(init.headers || {}) } });
    const answer = await route(url, init);
    if (answer instanceof Error) throw answer;
    const headers = new Map(Object.entries(answer.headers || {}));
    return {
      status: answer.status,
      ok: answer.status >= 200 && answer.status < 300,
      headers: { get: (name) => headers.get(name) ?? null },
      json: async () => {
        if (answer.body === undefined) throw new SyntaxError("no body");
        return answer.body;
      },
    };
  };
  fetch.calls = calls;
  fetch.posts = () => calls.filter((call) => call.method === "POST");
  return fetch;
}

/** A document and window that tests can fire visibilitychange / online on. */
export function makePage() {
  const target = () => {
    const listeners = new Map();
    return {
      addEventListener(type, fn) {
        if (!listeners.has(type)) listeners.set(type, new Set());
        listeners.get(type).add(fn);
      },
      removeEventListener(type, fn) { listeners.get(type)?.delete(fn); },
      fire(type) { for (const fn of [...(listeners.get(type) ?? [])]) fn({ type }); },
      count() { let n = 0; for (const s of listeners.values()) n += s.size; return n; },
    };
  };
  const document = Object.assign(target(), { visibilityState: "visible" });
  const window = target();
  const navigator = { onLine: true };
  return { document, window, navigator };
}

/** Let pending promise callbacks (fetch answers) run. */
export async function settle() {
  for (let i = 0; i < 10; i += 1) await new Promise((resolve) => setImmediate(resolve));
}

export const CREATED = {
  success: true,
  id: "p1",
  status: "starting",
  stream_url: "/api/predictions/p1/events?token=tok1",
  cancel_url: "/api/predictions/p1/cancel?token=tok1",
};

export function snapshot(fields = {}) {
  return {
    id: "p1", status: "processing", output: null, error: null, logs: "",
    progress: null, metrics: null, created_at: "2024-01-01T00:00:00Z",
    started_at: null, completed_at: null, ...fields,
  };
}

/** BroadcastChannel and navigator.locks for several "tabs" in one process. */
export function makeTabsWorld() {
  const channels = new Set();
  class FakeBroadcastChannel {
    constructor(name) {
      this.name = name;
      this.onmessage = null;
      channels.add(this);
    }

    postMessage(data) {
      if (!channels.has(this)) throw new Error("channel closed");
      const copy = structuredClone(data);
      for (const other of channels) {
        if (other !== this && other.name === this.name) {
          queueMicrotask(() => { if (channels.has(other) && other.onmessage) other.onmessage({ data: copy }); });
        }
      }
    }

    close() { channels.delete(this); }
  }
  const queues = new Map();
  const locks = {
    request(name, callback) {
      return new Promise((resolve, reject) => {
        if (!queues.has(name)) queues.set(name, { held: false, waiting: [] });
        const queue = queues.get(name);
        queue.waiting.push({ callback, resolve, reject });
        const grant = () => {
          if (queue.held || queue.waiting.length === 0) return;
          const next = queue.waiting.shift();
          queue.held = true;
          Promise.resolve().then(() => next.callback({ name })).then((value) => {
            queue.held = false;
            next.resolve(value);
            grant();
          }, next.reject);
        };
        queueMicrotask(grant);
      });
    },
  };
  return { BroadcastChannel: FakeBroadcastChannel, locks };
}
