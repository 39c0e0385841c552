// Builds a RelayClient wired to the fakes, recording every callback.
import { RelayClient } from "../../static/client/index.js";
import { CREATED, FakeClock, makeEventSourceClass, makeFetch, makePage } from "./fakes.mjs";

export function defaultRoute(url, init) {
  if (init.method === "POST" && url.endsWith("/api/predictions")) {
    return { status: 201, body: CREATED };
  }
  if (init.method === "POST" && url.includes("/cancel")) {
    return { status: 200, body: { success: true, id: "p1", status: "canceled" } };
  }
  return { status: 503, body: { success: false, error: "Try later.", code: "unavailable" } };
}

export function makeHarness({ route = defaultRoute, random = () => 0.5, ...options } = {}) {
  const EventSource = makeEventSourceClass();
  const clock = new FakeClock();
  const fetch = makeFetch(route);
  const page = makePage();
  const seen = [];
  const handlerErrors = [];
  const record = (name) => (...args) => seen.push([name, ...args]);
  const client = new RelayClient({
    EventSource,
    fetch,
    setTimeout: clock.setTimeout,
    clearTimeout: clock.clearTimeout,
    now: clock.now,
    random,
    document: page.document,
    window: page.window,
    navigator: page.navigator,
    AbortController: globalThis.AbortController,
    heartbeatMs: 1000,
    onHandlerError: (error, where) => handlerErrors.push({ error, where }),
    onState: record("state"),
    onStatus: record("status"),
    onProgress: record("progress"),
    onOutput: record("output"),
    onLogs: record("logs"),
    onUpstream: record("upstream"),
    onSuccess: record("success"),
    onError: record("error"),
    onConnection: record("connection"),
    ...options,
  });
  const calls = (name) => seen.filter((entry) => entry[0] === name).map((entry) => entry.slice(1));
  return { client, EventSource, clock, fetch, page, seen, calls, handlerErrors };
}
