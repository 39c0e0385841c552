// One event stream per browser: tabs share it through a leader (RelayTabs).
import { test } from "node:test";
import assert from "node:assert/strict";
import { RelayClient, RelayTabs } from "../../static/client/index.js";
import { FakeClock, makeEventSourceClass, makeFetch, makePage, makeTabsWorld, settle, snapshot } from "./fakes.mjs";

function world() {
  const EventSource = makeEventSourceClass();
  const clock = new FakeClock();
  const { BroadcastChannel, locks } = makeTabsWorld();
  const fetch = makeFetch(() => ({ status: 503, body: {} }));
  const env = (page) => ({
    EventSource, fetch, BroadcastChannel, locks, setTimeout: clock.setTimeout, clearTimeout: clock.clearTimeout,
    now: clock.now, random: Math.random, document: page.document, window: page.window, navigator: page.navigator,
  });
  const tabs = [];
  const openTab = () => {
    const page = makePage();
    const shared = new RelayTabs({ ...env(page), heartbeatMs: 1000 });
    const seen = [];
    const client = new RelayClient({
      ...env(page), multiplex: shared, heartbeatMs: 1000,
      onProgress: (progress) => seen.push(progress.percent),
    });
    const tab = { shared, client, seen };
    tabs.push(tab);
    return tab;
  };
  const open = () => EventSource.instances.filter((source) => !source.closed);
  return { EventSource, clock, openTab, tabs, open };
}

const STREAM = "/api/predictions/p1/events?token=t1";

test("three tabs following one prediction hold one stream, and every tab sees every event", async () => {
  const w = world();
  for (let i = 0; i < 3; i += 1) {
    w.openTab().client.follow(STREAM);
    await settle();
  }
  w.clock.advance(150); // the new leader's window for the other tabs' lists
  assert.equal(w.open().length, 1, "one EventSource for the three tabs");
  assert.equal(w.tabs.filter((tab) => tab.shared.isLeader).length, 1);
  const source = w.open()[0];
  source.open();
  source.send("message", snapshot({ progress: { percent: 10 } }), "e1");
  source.send("message", snapshot({ progress: { percent: 20 } }), "e2");
  await settle();
  for (const tab of w.tabs) assert.deepEqual(tab.seen, [10, 20]);
});

test("when the leader closes another tab resumes from the last event id: nothing lost, nothing repeated", async () => {
  const w = world();
  for (let i = 0; i < 3; i += 1) {
    w.openTab().client.follow(STREAM);
    await settle();
  }
  w.clock.advance(150); // the new leader's window for the other tabs' lists
  const first = w.open()[0];
  first.open();
  first.send("message", snapshot({ progress: { percent: 10 } }), "e1");
  await settle();
  const leader = w.tabs.find((tab) => tab.shared.isLeader);
  leader.client.close();
  leader.shared.close();
  await settle();
  w.clock.advance(150);
  await settle();
  assert.equal(first.closed, true);
  const open = w.open();
  assert.equal(open.length, 1, "exactly one stream after the handover");
  assert.match(open[0].url, /lastEventId=e1/);
  open[0].open();
  // A handover race can deliver an event twice: each tab shows it once.
  open[0].send("message", snapshot({ progress: { percent: 30 } }), "e2");
  open[0].send("message", snapshot({ progress: { percent: 30 } }), "e2");
  open[0].send("message", snapshot({ status: "succeeded", progress: { percent: 100 } }), "e3");
  open[0].send("done", { id: "p1", status: "succeeded" }, "e4");
  await settle();
  const others = w.tabs.filter((tab) => tab !== leader);
  for (const tab of others) {
    assert.deepEqual(tab.seen, [10, 30, 100]);
    assert.equal(tab.client.phase, "succeeded");
  }
  assert.equal(w.open().length, 0, "the stream ends with the prediction");
});

test("without BroadcastChannel or locks RelayTabs is a plain multiplex", async () => {
  const EventSource = makeEventSourceClass();
  const clock = new FakeClock();
  const page = makePage();
  const base = { EventSource, setTimeout: clock.setTimeout, clearTimeout: clock.clearTimeout, now: clock.now,
    document: page.document, window: page.window, navigator: page.navigator, BroadcastChannel: undefined, locks: undefined };
  const shared = new RelayTabs(base);
  const client = new RelayClient({ ...base, multiplex: shared });
  client.follow(STREAM);
  assert.equal(shared.isLeader, true);
  assert.equal(EventSource.instances.length, 1);
  assert.match(EventSource.latest().url, /^\/api\/events\?watch=t1$/);
  client.close();
  assert.equal(EventSource.latest().closed, true);
});
