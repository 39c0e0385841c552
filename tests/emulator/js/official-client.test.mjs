// The official JS client (npm `replicate`), unmodified, against a standalone emulator.
// Started by tests/emulator/test_official_js_client.py, which passes the emulator's URL and token
// and trusts its self-signed certificate through NODE_EXTRA_CA_CERTS.
import { test } from "node:test";
import assert from "node:assert/strict";
import http from "node:http";
import { createRequire } from "node:module";

const require = createRequire(import.meta.url);
const Replicate = require("replicate");
const { validateWebhook } = Replicate;

const base = process.env.EMULATOR_URL;
const auth = process.env.EMULATOR_TOKEN;
const replicate = new Replicate({ auth, baseUrl: `${base}/v1` });
const FAST = { boot_delay: 0, step_delay: 0.01 };
const PNG = [0x89, 0x50, 0x4e, 0x47];

test("predictions.create by model and by version, get, cancel", async () => {
  const byModel = await replicate.predictions.create({
    model: "relay/image-demo", input: { prompt: "a", boot_delay: 0.5, step_delay: 0.01 } });
  assert.equal(byModel.status, "starting");
  assert.equal(byModel.logs, "");
  const model = await replicate.models.get("relay", "image-demo");
  const byVersion = await replicate.predictions.create({
    version: model.latest_version.id, input: { prompt: "b", boot_delay: 30 } });
  assert.equal(byVersion.model, "relay/image-demo");
  const got = await replicate.predictions.get(byModel.id);
  assert.equal(got.id, byModel.id);
  const canceled = await replicate.predictions.cancel(byVersion.id);
  assert.equal(canceled.status, "canceled");
  const version = await replicate.models.versions.get("relay", "image-demo", model.latest_version.id);
  assert.ok(version.openapi_schema.paths["/predictions"]);
});

test("run returns FileOutput objects for https file outputs", async () => {
  const output = await replicate.run("relay/image-demo", {
    input: { prompt: "two", num_outputs: 2, width: 64, height: 64, ...FAST } });
  assert.equal(output.length, 2);
  assert.ok(output[0].url().href.startsWith("https://"));
  const bytes = new Uint8Array(await (await output[0].blob()).arrayBuffer());
  assert.deepEqual([...bytes.slice(0, 4)], PNG);
});

test("run with wait: {mode: 'block'} whose window runs out keeps polling to the output", async () => {
  const output = await replicate.run("relay/image-demo", {
    input: { prompt: "slow", steps: 20, step_delay: 0.1, boot_delay: 0, width: 64, height: 64 },
    wait: { mode: "block", timeout: 1 } });
  assert.ok(Array.isArray(output) && output.length === 1, `got ${JSON.stringify(output)}`);
  const bytes = new Uint8Array(await (await output[0].blob()).arrayBuffer());
  assert.deepEqual([...bytes.slice(0, 4)], PNG);
});

test("run with a file input uploads it and the model reads it", async () => {
  // A 2x3 GIF header is enough for the captioning demo to read its size.
  const gif = Buffer.from("R0lGODlhAgADAIAAAP///wAAACwAAAAAAgADAAACAoRRADs=", "base64");
  const caption = await replicate.run("relay/caption-demo", { input: { image: gif, boot_delay: 0, delay: 0 } });
  assert.equal(caption, "A 2×3 GIF image");
});

test("stream reads the capability URL with no Authorization", async () => {
  const chunks = [];
  let ended = false;
  for await (const event of replicate.stream("relay/text-demo", {
    input: { prompt: "s", max_tokens: 5, token_delay: 0.01, boot_delay: 0 } })) {
    if (event.event === "output") chunks.push(String(event));
    if (event.event === "done") ended = true;
  }
  assert.equal(chunks.join("").split(" ").length, 5);
  assert.ok(ended);
});

test("validateWebhook accepts a real delivery and refuses a changed body", async () => {
  const { key } = await replicate.webhooks.default.secret.get();
  assert.ok(key.startsWith("whsec_"));
  let resolve;
  const delivered = new Promise((r) => { resolve = r; });
  const server = http.createServer((req, res) => {
    let body = "";
    req.on("data", (c) => { body += c; });
    req.on("end", () => { res.end("ok"); resolve({ headers: req.headers, body }); });
  });
  await new Promise((r) => server.listen(0, "127.0.0.1", r));
  try {
    await replicate.predictions.create({
      model: "relay/json-demo", input: { text: "hook", boot_delay: 0, delay: 0 },
      webhook: `http://127.0.0.1:${server.address().port}/hook`, webhook_events_filter: ["completed"] });
    const { headers, body } = await delivered;
    assert.equal(await validateWebhook({ headers, body }, key), true);
    assert.equal(await validateWebhook({ headers, body: body.replace("hook", "hack") }, key), false);
  } finally {
    server.close();
  }
});

test("errors carry Replicate's status lines", async () => {
  const stranger = new Replicate({ auth: "r8_wrong", baseUrl: `${base}/v1` });
  await assert.rejects(stranger.predictions.list(), (error) => {
    assert.equal(error.response.status, 401);
    assert.match(error.message, /401 Unauthorized/);
    return true;
  });
  await assert.rejects(
    replicate.predictions.create({ model: "relay/image-demo", input: {}, webhook_event_filter: ["start"] }),
    (error) => {
      assert.match(error.message, /422 Unprocessable Entity/);
      assert.match(error.message, /additional_property_not_allowed|webhook_event_filter/);
      return true;
    });
});
