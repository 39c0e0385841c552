// start() sends an Idempotency-Key: one per logical create, the same on each retry of it.
import { test } from "node:test";
import assert from "node:assert/strict";
import { makeHarness, defaultRoute } from "./harness.mjs";
import { settle } from "./fakes.mjs";

/** A route whose first `failures` POSTs to /api/predictions fail as a network error would. */
function flaky(failures) {
  let left = failures;
  return (url, init) => {
    if (init.method === "POST" && url.endsWith("/api/predictions") && left > 0) {
      left -= 1;
      return new TypeError("Failed to fetch");
    }
    return defaultRoute(url, init);
  };
}

async function runClock(h, started) {
  let done = false;
  started.finally(() => { done = true; }).catch(() => {});
  for (let i = 0; i < 50; i += 1) {
    await settle();
    if (done) break;
    h.clock.advance(60_000);
  }
  return started;
}

test("a create retried after network errors reuses its Idempotency-Key", async () => {
  const h = makeHarness({ route: flaky(2) });
  const created = await runClock(h, h.client.start("relay/image-demo", { prompt: "a cat" }));
  assert.equal(created.id, "p1");
  const posts = h.fetch.posts();
  assert.equal(posts.length, 3);
  const keys = posts.map((post) => post.headers["Idempotency-Key"]);
  assert.ok(keys[0] && keys[0].length >= 16, `a real key, got ${keys[0]}`);
  assert.deepEqual(keys, [keys[0], keys[0], keys[0]]);
  assert.equal(h.client.idempotencyKey, keys[0]);
  assert.equal(h.client.phase, "streaming");
});

test("two creates send two different keys", async () => {
  const first = makeHarness();
  const second = makeHarness();
  await first.client.start("relay/image-demo", { prompt: "a cat" });
  await second.client.start("relay/image-demo", { prompt: "a cat" });
  const one = first.fetch.posts()[0].headers["Idempotency-Key"];
  const two = second.fetch.posts()[0].headers["Idempotency-Key"];
  assert.ok(one && two);
  assert.notEqual(one, two);
});

test("keys come from getRandomValues when randomUUID is missing", async () => {
  let filled = 0;
  const crypto = { getRandomValues: (bytes) => { filled += 1; bytes.fill(171); return bytes; } };
  const h = makeHarness({ crypto });
  await h.client.start("relay/image-demo", {});
  assert.equal(filled, 1);
  assert.equal(h.fetch.posts()[0].headers["Idempotency-Key"], "ab".repeat(16));
});

test("network errors give up after createAttempts, a refusal is never re-sent", async () => {
  const h = makeHarness({ route: flaky(10), createAttempts: 2 });
  await assert.rejects(runClock(h, h.client.start("relay/image-demo", {})), /Could not reach Relay/);
  assert.equal(h.fetch.posts().length, 2);
  assert.equal(h.client.phase, "error");
});

test("a grant option goes out as Authorization: Relay-Grant on the create", async () => {
  const h = makeHarness({ grant: "payload.signature" });
  await h.client.start("relay/image-demo", {});
  assert.equal(h.fetch.posts()[0].headers.Authorization, "Relay-Grant payload.signature");
  const plain = makeHarness();
  await plain.client.start("relay/image-demo", {});
  assert.equal(plain.fetch.posts()[0].headers.Authorization, undefined);
});

test("a client closed while waiting to resend sends nothing more", async () => {
  const h = makeHarness({ route: flaky(10) });
  const started = h.client.start("relay/image-demo", {});
  await settle();
  assert.equal(h.fetch.posts().length, 1);
  h.client.close();
  h.clock.advance(60_000);
  await assert.rejects(started, /closed/);
  await settle();
  assert.equal(h.fetch.posts().length, 1);
});
