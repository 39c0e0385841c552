// The form's and the outputs' pure logic (static/page/form.js, outputs.js), under node.
import test from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { fieldSpecs, valueOf, uploadFile } from "../../static/page/form.js";
import { outputView, runTime, copyText, fileName } from "../../static/page/outputs.js";

// The sdxl schema recorded from Replicate, as GET /api/models serves it (choices resolved).
const sdxl = JSON.parse(readFileSync(new URL("../fixtures/schemas/stability-ai__sdxl.json", import.meta.url)));
const input = structuredClone(sdxl.model.latest_version.openapi_schema.components.schemas.Input);
for (const name of ["refine", "scheduler"]) {
  const ref = sdxl.model.latest_version.openapi_schema.components.schemas[name];
  const { allOf, ...own } = input.properties[name];
  input.properties[name] = { type: ref.type, enum: ref.enum, ...own };
}
const model = {
  name: "stability-ai/sdxl", kind: "image", inputs: input,
  editable: Object.keys(input.properties),
  default_input: { prompt: "An astronaut riding a rainbow unicorn", num_inference_steps: 50, scheduler: "K_EULER" },
};

test("one field per editable input in x-order, each with the right control", () => {
  const specs = fieldSpecs(model);
  assert.deepEqual(specs.slice(0, 3).map((s) => s.name), ["prompt", "negative_prompt", "image"]);
  const by = Object.fromEntries(specs.map((s) => [s.name, s]));
  assert.equal(by.prompt.control, "textarea");
  assert.equal(by.negative_prompt.control, "textarea");
  assert.equal(by.image.control, "file");
  assert.equal(by.scheduler.control, "select");
  assert.deepEqual(by.scheduler.options.slice(0, 2), ["DDIM", "DPMSolverMultistep"]);
  assert.equal(by.scheduler.value, "K_EULER");
  assert.equal(by.apply_watermark.control, "checkbox");
  assert.equal(by.apply_watermark.value, true);
  assert.deepEqual([by.num_outputs.control, by.num_outputs.min, by.num_outputs.max, by.num_outputs.step],
    ["number", 1, 4, 1]);
  assert.equal(by.guidance_scale.step, "any");
  assert.equal(by.replicate_weights.control, "text");
  assert.equal(by.num_inference_steps.label, "Num Inference Steps");
  assert.equal(by.num_inference_steps.help, "Number of denoising steps");
  assert.equal(by.scheduler.label, "Scheduler");
  assert.equal(by.prompt.optional, false);
  assert.equal(by.seed.optional, true);
});

test("only editable inputs get fields", () => {
  const specs = fieldSpecs({ ...model, editable: ["prompt", "seed"] });
  assert.deepEqual(specs.map((s) => s.name), ["prompt", "seed"]);
});

test("values keep their types: integers, numbers, booleans, choices; empty optional inputs are left out", () => {
  const by = Object.fromEntries(fieldSpecs(model).map((s) => [s.name, s]));
  assert.equal(valueOf(by.num_outputs, "3"), 3);
  assert.ok(Number.isInteger(valueOf(by.num_outputs, "3")));
  assert.equal(valueOf(by.num_outputs, "2.5"), 2.5); // the server names the field
  assert.equal(valueOf(by.guidance_scale, "7.5"), 7.5);
  assert.equal(valueOf(by.seed, ""), undefined);
  assert.equal(valueOf(by.apply_watermark, "on", false), false);
  assert.equal(valueOf(by.scheduler, "DDIM"), "DDIM");
  assert.equal(valueOf(by.replicate_weights, ""), undefined);
});

test("an upload answers the URL, or rejects with the server's sentence", async () => {
  const file = new Blob(["x"], { type: "image/png" });
  file.name = "a.png";
  const seen = [];
  const ok = (url, init) => { seen.push([url, init.method]); return Promise.resolve(new Response(JSON.stringify({ success: true, url: "data:image/png;base64,eA==" }), { status: 201 })); };
  assert.equal(await uploadFile("/relay", file, ok), "data:image/png;base64,eA==");
  assert.deepEqual(seen, [["/relay/api/uploads", "POST"]]);
  const refused = () => Promise.resolve(new Response(JSON.stringify({ success: false, error: "The file is larger than 10 MB.", code: "payload_too_large" }), { status: 413 }));
  await assert.rejects(uploadFile("", file, refused), /larger than 10 MB/);
});

test("outputs by kind", () => {
  assert.deepEqual(outputView("image", ["https://x/out-0.png", "https://x/out-1.png"]),
    { type: "images", urls: ["https://x/out-0.png", "https://x/out-1.png"] });
  assert.deepEqual(outputView("file", "/emulator/files/abc/output.png"), { type: "images", urls: ["/emulator/files/abc/output.png"] });
  assert.deepEqual(outputView("video", "https://x/a.mp4"), { type: "video", urls: ["https://x/a.mp4"] });
  assert.deepEqual(outputView("file", "https://x/a.wav?sig=1"), { type: "audio", urls: ["https://x/a.wav?sig=1"] });
  assert.deepEqual(outputView("audio", "data:audio/wav;base64,UklGRg=="), { type: "audio", urls: ["data:audio/wav;base64,UklGRg=="] });
  assert.deepEqual(outputView("text", ["Hel", "lo"]), { type: "text", text: "Hello" });
  assert.deepEqual(outputView("text", "<b>not html</b>"), { type: "text", text: "<b>not html</b>" });
  assert.deepEqual(outputView("json", { words: 3 }), { type: "json", value: { words: 3 } });
  assert.deepEqual(outputView("file", "https://x/model.glb"), { type: "files", urls: ["https://x/model.glb"] });
  assert.equal(outputView("image", null), null);
});

test("run time, copy text and file names", () => {
  assert.equal(runTime({ predict_time: 4.981337 }), "Ran for 4.98 s");
  assert.equal(runTime({ predict_time: 43.376231 }), "Ran for 43.4 s");
  assert.equal(runTime({ predict_time: 63.2 }), "Ran for 1 min 3 s");
  assert.equal(runTime({}), "");
  assert.equal(runTime(null), "");
  assert.equal(copyText({ type: "json", value: { a: 1 } }), '{\n  "a": 1\n}');
  assert.equal(copyText({ type: "text", text: "hi" }), "hi");
  assert.equal(fileName("https://x/y/out-0.png?sig=2"), "out-0.png");
  assert.equal(fileName("data:audio/wav;base64,AAAA"), "output.wav");
});
