// The page's reattach plan (static/page/runs.js): GET /api/runs decides what a reload follows.
import test from "node:test";
import assert from "node:assert/strict";
import { reconcile, snapshotOfRun, isFinishedStatus } from "../../static/page/runs.js";

const entry = (id, extra = {}) => ({ model: "relay/text-demo", input: { prompt: id },
  stream_url: `/api/predictions/${id}/stream?token=old`, cancel_url: `/api/predictions/${id}/cancel?token=old`,
  lastEventId: "7", ...extra });
const run = (id, status) => ({ id, status, model: "relay/text-demo", input: { prompt: id }, output: ["a", " b"],
  stream_url: `/api/predictions/${id}/stream?token=new`, cancel_url: `/api/predictions/${id}/cancel?token=new` });

test("unlisted entries are dropped, finished ones shown finished, the rest followed on the fresh URLs", () => {
  const saved = { gone: entry("gone"), done: entry("done"), live: entry("live") };
  const plan = reconcile(saved, [run("live", "processing"), run("done", "succeeded"), run("other", "starting")]);
  assert.deepEqual(plan.follow.map(([e, r]) => [e.lastEventId, r.stream_url]),
    [["7", "/api/predictions/live/stream?token=new"]]);
  assert.deepEqual(plan.finished.map(([, r]) => r.id), ["done"]);
});

test("a queued run's own id is followed on its kept URLs though the records do not list it", () => {
  const plan = reconcile({ "rq-abc": entry("rq-abc") }, []);
  assert.equal(plan.follow.length, 1);
  assert.equal(plan.follow[0][1].stream_url, "/api/predictions/rq-abc/stream?token=old");
  assert.equal(plan.follow[0][1].status, "queued");
});

test("a finished record reads as the snapshot a stream would end with", () => {
  const snapshot = snapshotOfRun(run("done", "succeeded"));
  assert.equal(snapshot.status, "succeeded");
  assert.deepEqual(snapshot.output, ["a", " b"]);
  assert.equal(snapshot.logs, null);
  for (const status of ["succeeded", "failed", "canceled", "aborted"]) assert.ok(isFinishedStatus(status));
  for (const status of ["queued", "starting", "processing"]) assert.ok(!isFinishedStatus(status));
});
