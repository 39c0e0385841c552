// The log rebuilt from the first snapshot's tail and `event: logs` deltas (docs/openapi.yaml),
// and an older server's whole log in every snapshot.
import { test } from "node:test";
import assert from "node:assert/strict";
import { LogBook } from "../../static/client/index.js";
import { makeHarness } from "./harness.mjs";
import { snapshot } from "./fakes.mjs";

async function streaming() {
  const h = makeHarness();
  await h.client.start("relay/image-demo", { prompt: "a cat" });
  const source = h.EventSource.latest();
  source.open();
  return { ...h, source };
}

const logsSeen = (h) => h.calls("logs").map(([logs]) => logs);

test("the tail of the first snapshot plus deltas give the log, and later null logs change nothing", async () => {
  const h = await streaming();
  h.source.send("message", snapshot({ logs: "step 3\n", logs_offset: 40, logs_length: 47 }), "1-0");
  h.source.send("logs", { id: "p1", offset: 47, text: "step 4\n" }, "1-1");
  h.source.send("message", snapshot({ logs: null, logs_length: 54, progress: { percent: 40 } }), "1-2");
  h.source.send("logs", { id: "p1", offset: 54, text: "step 5\n" }, "1-3");
  assert.deepEqual(logsSeen(h), ["step 3\n", "step 3\nstep 4\n", "step 3\nstep 4\nstep 5\n"]);
  assert.equal(h.client.logs, "step 3\nstep 4\nstep 5\n");
  assert.equal(h.client.logsOffset, 40);
  assert.equal(h.client.logsUrl, "/api/predictions/p1/logs?token=tok1");
});

test("a delta that overlaps what is known adds only its new part; one past the end starts over", () => {
  const book = new LogBook();
  book.applySnapshot({ logs: "ab", logs_offset: 0 });
  assert.equal(book.applyDelta({ offset: 1, text: "bcd" }), true);
  assert.equal(book.text, "abcd");
  assert.equal(book.applyDelta({ offset: 0, text: "abcd" }), false, "a replayed delta changes nothing");
  assert.equal(book.applyDelta({ offset: 10, text: "xyz" }), true);
  assert.equal(book.text, "xyz");
  assert.equal(book.offset, 10);
  assert.equal(book.length, 13);
});

test("offsets count code points, so an emoji or an accent before the end keeps deltas in place", () => {
  const book = new LogBook();
  book.applySnapshot({ logs: "🦊 é\n", logs_offset: 0, logs_length: 4 });
  assert.equal(book.length, 4);
  book.applyDelta({ offset: 4, text: "done\n" });
  book.applyDelta({ offset: 6, text: "ne\n🦊" });
  assert.equal(book.text, "🦊 é\ndone\n🦊");
  assert.equal(book.length, 10);
});

test("a snapshot that rewrites the log replaces it with the new tail", async () => {
  const h = await streaming();
  h.source.send("message", snapshot({ logs: "old\n", logs_offset: 0, logs_length: 4 }), "1-0");
  h.source.send("message", snapshot({ logs: "new\n", logs_offset: 0, logs_length: 4, status: "processing" }), "1-1");
  assert.deepEqual(logsSeen(h), ["old\n", "new\n"]);
});

test("an older server's whole log in every snapshot is the log, reported once per change", async () => {
  const h = await streaming();
  h.source.send("message", snapshot({ logs: "a\n" }), "1-0");
  h.source.send("message", snapshot({ logs: "a\nb\n", progress: { percent: 10 } }), "1-1");
  h.source.send("message", snapshot({ logs: "a\nb\n", progress: { percent: 20 } }), "1-2");
  assert.deepEqual(logsSeen(h), ["a\n", "a\nb\n"]);
  assert.equal(h.client.logsOffset, 0);
});

test("after a reconnect the resumed deltas continue the log without doubling a line", async () => {
  const h = await streaming();
  h.source.send("message", snapshot({ logs: "one\n", logs_offset: 0, logs_length: 4 }), "1-0");
  h.source.send("logs", { id: "p1", offset: 4, text: "two\n" }, "1-1");
  h.source.drop();
  h.clock.advance(30000);
  const again = h.EventSource.latest();
  assert.match(again.url, /lastEventId=1-1$/);
  again.open();
  // A server that knew the id sends only what followed; one that did not sends the tail again.
  again.send("message", snapshot({ logs: "one\ntwo\n", logs_offset: 0, logs_length: 8 }), "1-2");
  again.send("logs", { id: "p1", offset: 8, text: "three\n" }, "1-3");
  assert.equal(h.client.logs, "one\ntwo\nthree\n");
});
