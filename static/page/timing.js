/*
 * Pure helpers for the words and clocks of a card that waits: a queue place
 * ("3rd in line"), a duration ("1 min 20 s"), a remaining time that counts
 * down locally and may only move up by a small tolerance when a new estimate
 * arrives, and the wait sentence of a refused create. No DOM, no timers:
 * the card (card.js) and the page (app.js) call them, and node tests them.
 */

/** 1 -> "1st", 2 -> "2nd", 3 -> "3rd", 11 -> "11th", 22 -> "22nd". */
export function ordinal(n) {
  var whole = Math.max(0, Math.floor(Number(n) || 0));
  var lastTwo = whole % 100;
  var last = whole % 10;
  var suffix = "th";
  if (lastTwo < 11 || lastTwo > 13) {
    if (last === 1) suffix = "st";
    else if (last === 2) suffix = "nd";
    else if (last === 3) suffix = "rd";
  }
  return whole + suffix;
}

/** A queued card's line: "1st in line" (1 = next to start), or null without a position. */
export function queueLine(queue) {
  var position = queue && typeof queue.position === "number" ? queue.position : null;
  if (position === null || position < 1) return null;
  return ordinal(position) + " in line";
}

/** Seconds as people say them: "45 s", "2 min", "1 min 5 s", "1 h 3 min". */
export function formatDuration(seconds) {
  var whole = Math.max(1, Math.round(seconds));
  if (whole < 60) return whole + " s";
  if (whole >= 3600) {
    var hours = Math.floor(whole / 3600);
    var mins = Math.round((whole % 3600) / 60);
    return hours + " h" + (mins ? " " + mins + " min" : "");
  }
  var minutes = Math.floor(whole / 60);
  var rest = whole % 60;
  return minutes + " min" + (rest ? " " + rest + " s" : "");
}

/**
 * The moment (ms) the run is expected to finish, given the one shown so far
 * and a new estimate's: an earlier one is taken at once, a later one only up
 * to `toleranceMs` past the shown one, so the remaining time never jumps up
 * by more than that. `shown` null: the proposal is taken as it is.
 */
export function clampDeadline(shown, proposed, toleranceMs) {
  if (typeof proposed !== "number" || !isFinite(proposed)) return shown;
  if (typeof shown !== "number" || !isFinite(shown)) return proposed;
  return Math.min(proposed, shown + Math.max(0, toleranceMs));
}

/** Whole seconds from `now` to `deadline` (ms), never below zero. */
export function secondsLeft(deadline, now) {
  if (typeof deadline !== "number") return null;
  return Math.max(0, Math.ceil((deadline - now) / 1000));
}

/** The refused create's sentence without its own "try again in …" tail, which the page counts down itself. */
export function withoutWait(message) {
  var text = String(message || "").trim();
  return text.replace(/[;,.]?\s*try again in [^.;]*\.?\s*$/i, ".").replace(/\.\.$/, ".");
}

/** "Try again in 42 s." / "Try again in 59 min 30 s." for a wait in ms. */
export function waitSentence(ms) {
  var seconds = Math.ceil(ms / 1000);
  if (seconds < 60) return "Try again in " + seconds + (seconds === 1 ? " second." : " seconds.");
  return "Try again in " + formatDuration(seconds) + ".";
}
