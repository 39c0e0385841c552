// The page's pure timing and queue helpers (static/page/timing.js), under node.
import test from "node:test";
import assert from "node:assert/strict";
import {
  clampDeadline, formatDuration, ordinal, queueLine, secondsLeft, waitSentence, withoutWait,
} from "../../static/page/timing.js";

test("ordinals follow English, teens included", () => {
  const expected = {
    1: "1st", 2: "2nd", 3: "3rd", 4: "4th", 10: "10th", 11: "11th", 12: "12th", 13: "13th",
    21: "21st", 22: "22nd", 23: "23rd", 101: "101st", 111: "111th", 112: "112th",
  };
  for (const [n, word] of Object.entries(expected)) assert.equal(ordinal(Number(n)), word);
});

test("a queue place reads as 'Nth in line', and nothing without a position", () => {
  assert.equal(queueLine({ position: 1 }), "1st in line");
  assert.equal(queueLine({ position: 3 }), "3rd in line");
  assert.equal(queueLine({}), null);
  assert.equal(queueLine(null), null);
  assert.equal(queueLine({ position: 0 }), null);
});

test("durations read as seconds, minutes and hours", () => {
  assert.equal(formatDuration(0.2), "1 s");
  assert.equal(formatDuration(42), "42 s");
  assert.equal(formatDuration(60), "1 min");
  assert.equal(formatDuration(95), "1 min 35 s");
  assert.equal(formatDuration(3600), "1 h");
  assert.equal(formatDuration(3900), "1 h 5 min");
});

test("a later estimate moves the finish up by at most the tolerance; an earlier one at once", () => {
  assert.equal(clampDeadline(null, 10_000, 3000), 10_000);
  assert.equal(clampDeadline(10_000, 8_000, 3000), 8_000);
  assert.equal(clampDeadline(10_000, 12_000, 3000), 12_000);
  assert.equal(clampDeadline(10_000, 60_000, 3000), 13_000);
  assert.equal(clampDeadline(10_000, NaN, 3000), 10_000);
  assert.equal(clampDeadline(10_000, null, 3000), 10_000);
});

test("a countdown fed by jumping estimates never rises by more than the tolerance", () => {
  let shown = null;
  let previousLeft = null;
  const estimates = [30, 29, 45, 80, 10, 60, 5];  // seconds of finish_in, one per second
  estimates.forEach((finishIn, second) => {
    const now = second * 1000;
    shown = clampDeadline(shown, now + finishIn * 1000, 3000);
    const left = secondsLeft(shown, now);
    if (previousLeft !== null) assert.ok(left <= previousLeft + 3, `jumped from ${previousLeft} to ${left}`);
    previousLeft = left;
  });
});

test("seconds left never go below zero", () => {
  assert.equal(secondsLeft(5000, 1000), 4);
  assert.equal(secondsLeft(5000, 4500), 1);
  assert.equal(secondsLeft(5000, 9000), 0);
  assert.equal(secondsLeft(null, 9000), null);
});

test("a refused create's own wait is cut, and the page's countdown reads plainly", () => {
  assert.equal(withoutWait("This site has used up its prediction budget for now; try again in 42 minutes."),
    "This site has used up its prediction budget for now.");
  assert.equal(withoutWait("Too many predictions. Try again in 12 seconds."), "Too many predictions.");
  assert.equal(withoutWait("Nothing to cut."), "Nothing to cut.");
  assert.equal(waitSentence(1000), "Try again in 1 second.");
  assert.equal(waitSentence(12_000), "Try again in 12 seconds.");
  assert.equal(waitSentence(3_570_000), "Try again in 59 min 30 s.");
});
