// The single-prediction client against a hand-driven EventSource and clock.
import { test } from "node:test";
import assert from "node:assert/strict";
import { makeHarness } from "./harness.mjs";
import { settle, snapshot } from "./fakes.mjs";

async function streaming(options) {
  const h = makeHarness(options);
  await h.client.start("relay/image-demo", { prompt: "a cat" });
  const source = h.EventSource.latest();
  source.open();
  return { ...h, source };
}

test("start posts once and follows the stream_url it got back", async () => {
  const h = makeHarness();
  const phases = [];
  h.client.options.onState = null;
  const created = await h.client.start("relay/image-demo", { prompt: "a cat" });
  assert.equal(created.id, "p1");
  assert.equal(h.fetch.posts().length, 1);
  assert.deepEqual(JSON.parse(h.fetch.posts()[0].body), { model: "relay/image-demo", input: { prompt: "a cat" } });
  assert.equal(h.EventSource.instances.length, 1);
  assert.equal(h.EventSource.latest().url, "/api/predictions/p1/events?token=tok1");
  assert.equal(h.client.phase, "streaming");
  for (const [state] of h.calls("state")) phases.push(state.phase);
  assert.deepEqual(phases.slice(0, 2), ["submitting", "streaming"]);
});

test("a refused POST ends in error with the server's sentence and is never re-sent", async () => {
  const h = makeHarness({
    route: () => ({ status: 429, headers: { "Retry-After": "7" },
      body: { success: false, error: "Too many predictions; wait a minute.", code: "rate_limited" } }),
  });
  await assert.rejects(h.client.start("relay/image-demo", {}), /Too many predictions/);
  assert.equal(h.client.phase, "error");
  const [[error]] = h.calls("error");
  assert.equal(error.code, "rate_limited");
  assert.equal(error.retryAfterMs, 7000);
  assert.equal(error.kind, "request");
  h.clock.advance(120000);
  assert.equal(h.fetch.posts().length, 1);
  assert.equal(h.EventSource.instances.length, 0);
});

test("reconnects never repeat the POST and resume with lastEventId", async () => {
  const { client, source, clock, EventSource, fetch } = await streaming();
  source.send("message", snapshot({ progress: { percent: 10, step: null } }), "1700-1");
  source.drop();
  assert.equal(client.phase, "reconnecting");
  assert.equal(source.closed, true, "the old EventSource is closed before a new one is built");
  clock.advance(30000);
  const rebuilt = EventSource.latest();
  assert.notEqual(rebuilt, source);
  assert.equal(rebuilt.url, "/api/predictions/p1/events?token=tok1&lastEventId=1700-1");
  rebuilt.open();
  rebuilt.drop();
  clock.advance(30000);
  assert.match(EventSource.latest().url, /lastEventId=1700-1$/);
  assert.equal(fetch.posts().length, 1);
});

test("while reconnecting the state carries the attempt number and next retry time", async () => {
  const { client, source, clock } = await streaming({ random: () => 0.5 });
  source.drop();
  assert.equal(client.state.phase, "reconnecting");
  assert.equal(client.state.attempt, 1);
  assert.equal(client.state.nextRetryAt, clock.now() + 500);
});

test("the attempt counter resets after a healthy event, not at open", async () => {
  const { client, source, clock, EventSource } = await streaming({ random: () => 0.999 });
  source.drop();
  clock.advance(1000);
  EventSource.latest().open();
  EventSource.latest().drop();
  assert.equal(client.state.attempt, 2, "open alone does not reset");
  assert.equal(clock.delays.at(-1) > 1000, true, "second delay drawn from a doubled ceiling");
  clock.advance(2000);
  const third = EventSource.latest();
  third.open();
  assert.equal(client.state.attempt, 2);
  third.send("message", snapshot(), "1700-2");
  assert.equal(client.state.attempt, 0);
  assert.equal(client.phase, "streaming");
  third.drop();
  assert.equal(client.state.attempt, 1);
});

test("backoff delays grow between attempts and stay under the ceiling", async () => {
  const { client, source, clock, EventSource } = await streaming({ random: () => 0.999, retryMaxMs: 8000 });
  const retryDelays = [];
  source.drop();
  for (let i = 0; i < 6; i += 1) {
    const wait = client.state.nextRetryAt - clock.now();
    retryDelays.push(wait);
    clock.advance(wait);
    EventSource.latest().drop();
  }
  assert.deepEqual(retryDelays, [999, 1998, 3996, 7992, 7992, 7992]);
});

test("the attempt limit ends in error and leaves no timer", async () => {
  const { client, source, clock, EventSource, calls } = await streaming({ maxAttempts: 3 });
  source.drop();
  for (let i = 0; i < 3; i += 1) {
    clock.advance(60000);
    EventSource.latest().drop();
  }
  assert.equal(client.phase, "error");
  assert.equal(calls("error")[0][0].code, "reconnect_limit");
  assert.equal(clock.pending, 0);
  assert.equal(EventSource.instances.length, 4);
  clock.advance(600000);
  assert.equal(EventSource.instances.length, 4);
});

test("a throwing callback or a bad payload does not stop the stream", async () => {
  const h = await streaming({ onProgress: () => { throw new Error("boom"); } });
  h.source.send("message", snapshot({ progress: { percent: 5, step: null } }), "1");
  h.source.send("message", "{not json", "2");
  h.source.send("message", snapshot({ progress: { percent: 9, step: null }, logs: "x" }), "3");
  assert.equal(h.handlerErrors.length, 3);
  assert.match(h.handlerErrors[0].where, /onProgress/);
  assert.match(h.handlerErrors[1].where, /parsing/);
  assert.equal(h.client.phase, "streaming");
  assert.equal(h.source.closed, false);
  assert.equal(h.EventSource.instances.length, 1);
  assert.deepEqual(h.calls("logs").at(-1)[0], "x");
});

test("close() during a pending retry clears every timer and listener, and is idempotent", async () => {
  const { client, source, clock, EventSource, page } = await streaming();
  source.drop();
  assert.ok(clock.pending > 0);
  client.close();
  client.close();
  assert.equal(clock.pending, 0);
  assert.equal(page.document.count() + page.window.count(), 0);
  clock.advance(600000);
  assert.equal(EventSource.instances.length, 1);
});

test("close() while streaming closes the EventSource and removes its listeners", async () => {
  const { client, source, clock } = await streaming();
  client.close();
  assert.equal(source.closed, true);
  assert.equal(source.listenerCount(), 0);
  assert.equal(clock.pending, 0);
});

test("a 204 on resume stops for good", async () => {
  const h = await streaming({
    route: (url, init) => (init.method === "POST"
      ? { status: 201, body: (awaitCreated()) }
      : { status: 204 }),
  });
  h.source.send("message", snapshot(), "5");
  h.source.drop();
  h.clock.advance(h.client.state.nextRetryAt - h.clock.now());
  h.EventSource.latest().refuse();
  await settle();
  assert.equal(h.clock.pending, 0);
  assert.equal(h.EventSource.instances.length, 2);
  assert.equal(h.client.state.connection, "closed");
  assert.match(h.fetch.calls.at(-1).url, /lastEventId=5/);
});

function awaitCreated() {
  return {
    success: true, id: "p1", status: "starting",
    stream_url: "/api/predictions/p1/events?token=tok1",
    cancel_url: "/api/predictions/p1/cancel?token=tok1",
  };
}

test("a 4xx on the stream is fatal and shows the server's sentence", async () => {
  const h = await streaming({
    route: (url, init) => (init.method === "POST"
      ? { status: 201, body: awaitCreated() }
      : { status: 403, body: { success: false, error: "This link has expired.", code: "forbidden" } }),
  });
  h.source.refuse();
  await settle();
  assert.equal(h.client.phase, "error");
  const [[error]] = h.calls("error");
  assert.equal(error.message, "This link has expired.");
  assert.equal(error.status, 403);
  assert.equal(h.clock.pending, 0);
  assert.equal(h.EventSource.instances.length, 1);
});

test("a 5xx or a 429 on the stream is retried with backoff", async () => {
  const h = await streaming({
    route: (url, init) => (init.method === "POST"
      ? { status: 201, body: awaitCreated() }
      : { status: 429, headers: { "Retry-After": "4" }, body: {} }),
  });
  h.source.refuse();
  await settle();
  assert.equal(h.client.phase, "reconnecting");
  assert.equal(h.client.state.nextRetryAt, h.clock.now() + 4000, "Retry-After is honoured");
  h.clock.advance(4000);
  assert.equal(h.EventSource.instances.length, 2);
});

test("a terminal snapshot then done closes the stream with no reconnect", async () => {
  const h = await streaming();
  h.source.send("message", snapshot({ status: "succeeded", output: ["https://x/img.png"] }), "9");
  assert.equal(h.client.phase, "succeeded");
  assert.equal(h.source.closed, true);
  assert.equal(h.clock.pending, 0);
  h.source.send("done", { id: "p1", status: "succeeded" }, "10");
  h.source.drop();
  h.clock.advance(600000);
  assert.equal(h.EventSource.instances.length, 1);
  assert.equal(h.calls("success").length, 1);
  assert.equal(h.calls("progress").at(-1)[0].percent, 100);
});

test("done alone settles the prediction", async () => {
  const h = await streaming();
  h.source.send("message", snapshot({ error: "CUDA out of memory" }), "1");
  h.source.send("done", { id: "p1", status: "failed" }, "2");
  assert.equal(h.client.phase, "failed");
  assert.equal(h.calls("error")[0][0].message, "CUDA out of memory");
  assert.equal(h.clock.pending, 0);
});

test("aborted ends in the failed phase and reports the raw status", async () => {
  const h = await streaming();
  h.source.send("message", snapshot({ status: "aborted" }), "1");
  assert.equal(h.client.phase, "failed");
  assert.equal(h.calls("status").at(-1)[0], "aborted");
});

test("canceled is a terminal phase but not an error", async () => {
  const h = await streaming();
  await h.client.cancel();
  assert.equal(h.fetch.posts().at(-1).url, "/api/predictions/p1/cancel?token=tok1");
  h.source.send("message", snapshot({ status: "canceled" }), "1");
  assert.equal(h.client.phase, "canceled");
  assert.equal(h.calls("error").length, 0);
});

test("the stall watchdog reopens a silent open stream without counting an attempt", async () => {
  const h = await streaming();
  h.source.send("message", snapshot(), "7");
  h.clock.advance(3499);
  assert.equal(h.EventSource.instances.length, 1);
  h.clock.advance(1);
  assert.equal(h.source.closed, true);
  assert.equal(h.EventSource.instances.length, 2);
  assert.match(h.EventSource.latest().url, /lastEventId=7$/);
  assert.equal(h.client.state.attempt, 0);
});

test("the stall watchdog counts a connection that never opened as a failed attempt", async () => {
  const h = await streaming();
  h.source.drop();
  h.clock.advance(1000);
  const stuck = h.EventSource.latest();
  h.clock.advance(3500);
  assert.equal(stuck.closed, true);
  assert.equal(h.client.state.attempt, 2);
  assert.equal(h.client.phase, "reconnecting");
});

test("becoming visible or online reconnects at once instead of waiting", async () => {
  const h = await streaming({ random: () => 0.999 });
  h.source.drop();
  h.clock.advance(1000);
  h.EventSource.latest().drop();
  assert.equal(h.EventSource.instances.length, 2);
  h.page.document.fire("visibilitychange");
  assert.equal(h.EventSource.instances.length, 3);
  h.EventSource.latest().drop();
  h.page.window.fire("online");
  assert.equal(h.EventSource.instances.length, 4);
});

test("progress does not go backwards within a stage, but a new step label restarts it", async () => {
  const h = await streaming();
  const send = (percent, step, id) => h.source.send("message",
    snapshot({ progress: { percent, current: percent, total: 100, eta_seconds: 1, step }, logs: id }), id);
  send(40, "denoising", "1");
  send(30, "denoising", "2");
  send(45, "denoising", "3");
  send(5, "upscaling", "4");
  assert.deepEqual(h.calls("progress").map(([p]) => [p.percent, p.step]),
    [[40, "denoising"], [45, "denoising"], [5, "upscaling"]]);
});

test("text chunks append and the next snapshot's output is authoritative", async () => {
  const h = await streaming();
  h.source.send("output", { id: "p1", text: "Hel" }, "1");
  h.source.send("output", { id: "p1", text: "lo" }, "2");
  assert.equal(h.calls("output").at(-1)[0].text, "Hello");
  h.source.send("message", snapshot({ output: ["Hel"] }), "3");
  assert.equal(h.client.text, "Hello", "a snapshot behind the deltas does not shrink the text");
  h.source.send("message", snapshot({ output: ["Hi", " there"] }), "4");
  assert.equal(h.calls("output").at(-1)[0].text, "Hi there");
  h.source.send("message", snapshot({ status: "succeeded", output: ["Hi", " there", "!"] }), "5");
  assert.equal(h.client.text, "Hi there!");
});

test("upstream degraded and recovered are passed on without changing the phase", async () => {
  const h = await streaming();
  h.source.send("upstream", { id: "p1", state: "degraded", error: "Replicate 503", retry_in: 2 }, "1");
  assert.deepEqual(h.calls("upstream").at(-1)[0], { state: "degraded", error: "Replicate 503", retryIn: 2 });
  assert.equal(h.client.phase, "streaming");
  h.source.send("upstream", { id: "p1", state: "ok" }, "2");
  assert.equal(h.calls("upstream").at(-1)[0].state, "ok");
});

test("cancel before the POST answers is sent once the prediction exists", async () => {
  let answer;
  const h = makeHarness({
    route: (url, init) => (url.includes("/cancel")
      ? { status: 200, body: { success: true, id: "p1", status: "processing" } }
      : new Promise((resolve) => { answer = resolve; })),
  });
  const started = h.client.start("relay/image-demo", { prompt: "x" });
  await settle();
  await h.client.cancel();
  assert.equal(h.fetch.posts().length, 1);
  answer({ status: 201, body: awaitCreated() });
  await started;
  await settle();
  assert.equal(h.fetch.posts().length, 2);
  assert.match(h.fetch.posts()[1].url, /\/cancel\?token=tok1$/);
});
