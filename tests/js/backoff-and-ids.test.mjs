import { test } from "node:test";
import assert from "node:assert/strict";
import * as esm from "../../static/client/index.js";
import { readFileSync } from "node:fs";
import vm from "node:vm";

const { backoffDelay, composeEventId, parseEventId } = esm;

test("backoff grows exponentially under full jitter and never passes the ceiling", () => {
  const top = () => 0.999999;
  const ceilings = [1, 2, 3, 4, 5, 6, 7, 10].map((n) => backoffDelay(n, 1000, 30000, top));
  assert.deepEqual(ceilings, [999, 1999, 3999, 7999, 15999, 29999, 29999, 29999]);
  assert.equal(backoffDelay(3, 1000, 30000, () => 0), 0);
  assert.equal(backoffDelay(3, 1000, 30000, () => 0.5), 2000);
  for (let n = 1; n <= 12; n += 1) {
    for (let i = 0; i < 50; i += 1) {
      const delay = backoffDelay(n, 1000, 30000, Math.random);
      assert.ok(delay >= 0 && delay < Math.min(30000, 1000 * 2 ** (n - 1)), `${n}: ${delay}`);
    }
  }
});

test("a multiplexed event id joins positions in watch order, empty for nothing yet", () => {
  assert.equal(composeEventId(["1732420000000-3", "", "1732420000456-0"]), "1732420000000-3,,1732420000456-0");
  assert.deepEqual(parseEventId("1732420000000-3,,1732420000456-0", 3), ["1732420000000-3", "", "1732420000456-0"]);
  assert.equal(parseEventId("a,b", 3), null, "a count mismatch is not trusted");
  assert.equal(parseEventId("", 1), null);
  assert.equal(composeEventId(["0"]), "0", "an id of 0 is kept");
});

test("the classic-script build defines window.RelayClient with the modules' names", () => {
  const source = readFileSync(new URL("../../static/relay-client.js", import.meta.url), "utf8");
  assert.doesNotMatch(source, /^\s*(import|export)\s/m, "a classic script has no import or export");
  const sandbox = { console };
  vm.createContext(sandbox);
  vm.runInContext(source, sandbox);
  const classic = sandbox.RelayClient;
  assert.equal(typeof classic, "function");
  for (const name of ["Multiplex", "Tabs", "StreamConnection", "RelayError", "backoffDelay", "composeEventId",
    "parseEventId", "isTerminalStatus"]) {
    assert.equal(typeof classic[name], typeof esm.RelayClient[name], name);
  }
  assert.equal(classic.composeEventId(["a", "", "b"]), "a,,b");
});
