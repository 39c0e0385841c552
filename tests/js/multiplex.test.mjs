// Several predictions over one /api/events connection.
import { test } from "node:test";
import assert from "node:assert/strict";
import { RelayClient, RelayMultiplex } from "../../static/client/index.js";
import { FakeClock, makeEventSourceClass, makeFetch, makePage, settle, snapshot } from "./fakes.mjs";

function created(n) {
  return {
    success: true, id: `p${n}`, status: "starting",
    stream_url: `/api/predictions/p${n}/events?token=t${n}`,
    cancel_url: `/api/predictions/p${n}/cancel?token=t${n}`,
  };
}

function makeRig() {
  const EventSource = makeEventSourceClass();
  const clock = new FakeClock();
  let next = 0;
  const fetch = makeFetch(() => ({ status: 201, body: created(++next) }));
  const page = makePage();
  const env = {
    EventSource, fetch, setTimeout: clock.setTimeout, clearTimeout: clock.clearTimeout,
    now: clock.now, random: () => 0.5, ...page,
  };
  const connections = [];
  const multiplex = new RelayMultiplex({ ...env, heartbeatMs: 1000, onConnection: (info) => connections.push(info) });
  const clients = [];
  const add = async (callbacks = {}) => {
    const client = new RelayClient({ ...env, multiplex, ...callbacks });
    clients.push(client);
    await client.start("relay/image-demo", { prompt: `prompt ${clients.length}` });
    return client;
  };
  return { EventSource, clock, fetch, multiplex, clients, add, connections, page };
}

test("all predictions share one connection whose watch list follows them", async () => {
  const rig = await makeRig();
  await rig.add();
  assert.equal(rig.EventSource.instances.length, 1);
  assert.equal(rig.EventSource.latest().url, "/api/events?watch=t1");
  rig.EventSource.latest().open();
  await rig.add();
  assert.equal(rig.EventSource.instances[0].closed, true, "the old connection is closed first");
  assert.equal(rig.EventSource.latest().url, "/api/events?watch=t1&watch=t2");
  const open = rig.EventSource.instances.filter((source) => !source.closed);
  assert.equal(open.length, 1);
});

test("a rebuilt watch list resumes from composed positions, empty for the new one", async () => {
  const rig = await makeRig();
  const [a, b] = [await rig.add(), await rig.add()];
  const source = rig.EventSource.latest();
  source.open();
  source.send("message", snapshot({ id: "p1", progress: { percent: 10 } }), "100-3,");
  source.send("message", snapshot({ id: "p2" }), "100-3,200-0");
  assert.equal(a.status, "processing");
  assert.equal(b.status, "processing");
  await rig.add();
  assert.equal(rig.EventSource.latest().url,
    "/api/events?watch=t1&watch=t2&watch=t3&lastEventId=100-3%2C200-0%2C");
});

test("events are routed by prediction id", async () => {
  const rig = await makeRig();
  const logs = { p1: [], p2: [] };
  await rig.add({ onLogs: (text) => logs.p1.push(text) });
  await rig.add({ onLogs: (text) => logs.p2.push(text) });
  const source = rig.EventSource.latest();
  source.send("message", snapshot({ id: "p2", logs: "two" }), ",1");
  source.send("message", snapshot({ id: "p1", logs: "one" }), "1,1");
  source.send("message", snapshot({ id: "unknown", logs: "?" }), "1,1");
  assert.deepEqual(logs, { p1: ["one"], p2: ["two"] });
});

test("a finished prediction is dropped from the next watch list, keeping the others' positions", async () => {
  const rig = await makeRig();
  const [a, b] = [await rig.add(), await rig.add()];
  const source = rig.EventSource.latest();
  source.open();
  source.send("message", snapshot({ id: "p1", status: "succeeded", output: ["x"] }), "5,");
  source.send("message", snapshot({ id: "p2" }), "5,8");
  source.send("done", { id: "p1", status: "succeeded" }, "6,8");
  assert.equal(a.phase, "succeeded");
  assert.equal(b.phase, "streaming");
  source.drop();
  rig.clock.advance(1000);
  assert.equal(rig.EventSource.latest().url, "/api/events?watch=t2&lastEventId=8");
});

test("the connection closes when every prediction is done, leaving no timer", async () => {
  const rig = await makeRig();
  await rig.add();
  await rig.add();
  const source = rig.EventSource.latest();
  source.open();
  source.send("message", snapshot({ id: "p1", status: "canceled" }), "1,");
  source.send("message", snapshot({ id: "p2", status: "succeeded" }), "1,1");
  assert.equal(source.closed, true);
  assert.equal(rig.clock.pending, 0);
  assert.equal(rig.connections.at(-1).state, "idle");
  await rig.add();
  assert.equal(rig.EventSource.latest().url, "/api/events?watch=t3");
});

test("connection trouble is shared by every watching client", async () => {
  const rig = await makeRig();
  const [a, b] = [await rig.add(), await rig.add()];
  rig.EventSource.latest().open();
  rig.EventSource.latest().drop();
  assert.equal(a.phase, "reconnecting");
  assert.equal(b.phase, "reconnecting");
  assert.equal(rig.connections.at(-1).state, "reconnecting");
  assert.equal(rig.connections.at(-1).attempt, 1);
  rig.clock.advance(1000);
  rig.EventSource.latest().open();
  rig.EventSource.latest().send("message", snapshot({ id: "p1" }), "1,");
  assert.equal(a.phase, "streaming");
  assert.equal(b.phase, "streaming");
});

test("a prediction added while a retry is pending joins that retry", async () => {
  const rig = await makeRig();
  await rig.add();
  rig.EventSource.latest().drop();
  const before = rig.EventSource.instances.length;
  const late = await rig.add();
  assert.equal(rig.EventSource.instances.length, before, "no bypass of the backoff");
  assert.equal(late.phase, "reconnecting");
  rig.clock.advance(1000);
  assert.equal(rig.EventSource.latest().url, "/api/events?watch=t1&watch=t2");
});

test("a fatal answer ends every watching client with the server's sentence", async () => {
  const rig = await makeRig();
  const errors = [];
  await rig.add({ onError: (e) => errors.push(e.message) });
  await rig.add({ onError: (e) => errors.push(e.message) });
  rig.fetch.calls.length = 0;
  const fetchAnswer = { status: 403, body: { success: false, error: "A watch token is not valid.", code: "forbidden" } };
  rig.multiplex.env.fetch = makeFetch(() => fetchAnswer);
  rig.EventSource.latest().refuse();
  await settle();
  assert.deepEqual(errors, ["A watch token is not valid.", "A watch token is not valid."]);
  assert.equal(rig.clock.pending, 0);
});

test("closing one client leaves the others streaming", async () => {
  const rig = await makeRig();
  const [a, b] = [await rig.add(), await rig.add()];
  a.close();
  a.close();
  rig.EventSource.latest().drop();
  rig.clock.advance(1000);
  assert.equal(rig.EventSource.latest().url, "/api/events?watch=t2");
  rig.EventSource.latest().open();
  assert.equal(b.phase, "streaming");
  rig.multiplex.close();
  assert.equal(rig.clock.pending, 0);
  assert.equal(rig.page.document.count() + rig.page.window.count(), 0);
});
