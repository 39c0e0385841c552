/*
 * What every other module of the client shares: the server's vocabulary
 * (statuses, event types, event ids), URLs, the one way to ask Relay for JSON
 * (requestJson), the one way to call code we do not own (callSafely), the
 * error type, and the log book that rebuilds a prediction's log from the
 * tail of a first snapshot plus `event: logs` deltas.
 *
 * Nothing here touches the page: the browser's facilities come in through
 * resolveEnvironment(options), so node tests pass fakes for each of them.
 */

export const TERMINAL_PHASE_BY_STATUS = Object.freeze({
  succeeded: "succeeded",
  failed: "failed",
  canceled: "canceled",
  aborted: "failed",
});

/** Event types the server sends; `message` is a snapshot. */
export const STREAM_EVENT_TYPES = Object.freeze(["message", "output", "logs", "upstream", "done"]);

export const DEFAULTS = Object.freeze({
  heartbeatMs: 15000,
  retryBaseMs: 1000,
  retryMaxMs: 30000,
  maxAttempts: 10,
  createAttempts: 3,
});

export function isTerminalStatus(status) {
  return Object.prototype.hasOwnProperty.call(TERMINAL_PHASE_BY_STATUS, status);
}

export function isTerminalPhase(phase) {
  return phase === "succeeded" || phase === "failed" || phase === "canceled" || phase === "error";
}

/** Delay before reconnect attempt `attempt` (1-based): uniform in [0, min(max, base * 2^(attempt-1))). */
export function backoffDelay(attempt, baseMs, maxMs, random) {
  const ceiling = Math.min(maxMs, baseMs * 2 ** Math.max(0, attempt - 1));
  return Math.floor(random() * ceiling);
}

/** The multiplexed stream's event id: one position per watched prediction, in watch order. */
export function composeEventId(positions) {
  return positions.map((p) => p || "").join(",");
}

/** Split a multiplexed event id into `count` positions, or null when it does not fit. */
export function parseEventId(eventId, count) {
  if (typeof eventId !== "string" || eventId === "") return null;
  const parts = eventId.split(",");
  return parts.length === count ? parts : null;
}

/** Append query parameters to a possibly relative URL, leaving its other parameters alone. */
export function withQuery(url, params) {
  const pairs = [];
  for (const key of Object.keys(params)) {
    for (const value of [].concat(params[key])) {
      if (value === undefined || value === null) continue;
      pairs.push(encodeURIComponent(key) + "=" + encodeURIComponent(value));
    }
  }
  if (pairs.length === 0) return url;
  const hashAt = url.indexOf("#");
  const hash = hashAt >= 0 ? url.slice(hashAt) : "";
  const base = hashAt >= 0 ? url.slice(0, hashAt) : url;
  const joiner = base.includes("?") ? (/[?&]$/.test(base) ? "" : "&") : "?";
  return base + joiner + pairs.join("&") + hash;
}

export function queryParam(url, name) {
  const queryAt = url.indexOf("?");
  if (queryAt < 0) return null;
  const query = url.slice(queryAt + 1).split("#")[0];
  for (const pair of query.split("&")) {
    const eq = pair.indexOf("=");
    const key = decodeURIComponent((eq >= 0 ? pair.slice(0, eq) : pair).replace(/\+/g, " "));
    if (key === name) return decodeURIComponent((eq >= 0 ? pair.slice(eq + 1) : "").replace(/\+/g, " "));
  }
  return null;
}

export function predictionIdFromStreamUrl(url) {
  const match = /\/predictions\/([^/?#]+)\/events/.exec(url);
  return match ? decodeURIComponent(match[1]) : null;
}

export function cancelUrlFromStreamUrl(url) {
  return url.replace(/\/events(?=[?#]|$)/, "/cancel");
}

/** The full log's URL (docs/openapi.yaml): the stream URL's path with /logs, and its token. */
export function logsUrlFromStreamUrl(url) {
  if (!/\/predictions\/[^/?#]+\/events(?=[?#]|$)/.test(url)) return null;
  const token = queryParam(url, "token");
  const path = url.split(/[?#]/)[0].replace(/\/events$/, "/logs");
  return withQuery(path, { token });
}

export function sameJson(a, b) {
  return JSON.stringify(a) === JSON.stringify(b);
}

/** Text of an output: a list of string tokens joined, a string as is, otherwise null. */
export function textOfOutput(output) {
  if (typeof output === "string") return output;
  if (Array.isArray(output) && output.every((t) => typeof t === "string")) return output.join("");
  return null;
}

/** What to do after the stream's URL answered `status` to a probe. */
export function classifyStatus(status) {
  if (status === 204) return "stop";
  if (status === 408 || status === 429) return "retry";
  if (status >= 400 && status < 500) return "fatal";
  return "retry";
}

export function retryAfterMs(response) {
  const header = response && response.headers && response.headers.get
    ? response.headers.get("Retry-After") : null;
  const seconds = header === null || header === undefined ? NaN : Number(header);
  return Number.isFinite(seconds) && seconds >= 0 ? seconds * 1000 : 0;
}

/** An error the client reports: `message` is a sentence for a person. */
export class RelayError extends Error {
  constructor(message, details = {}) {
    super(message);
    this.name = "RelayError";
    this.code = details.code || "error";
    this.status = details.status || null;
    this.kind = details.kind || "stream";
    this.retryAfterMs = details.retryAfterMs || 0;
    this.field = details.field || null; // with code "invalid_input": the input that is wrong
  }

  static fromResponse(response, body, kind) {
    const message = body && typeof body.error === "string" && body.error
      ? body.error
      : "Relay answered " + response.status + ". Please try again.";
    return new RelayError(message, {
      code: (body && body.code) || "http_" + response.status,
      status: response.status,
      kind,
      retryAfterMs: retryAfterMs(response),
      field: body && typeof body.field === "string" ? body.field : null,
    });
  }
}

async function readJson(response) {
  try {
    return await response.json();
  } catch {
    return null;
  }
}

/**
 * The one way the client asks Relay for JSON. Resolves with the body of a 2xx
 * answer whose `success` is not false (and that passes `accept`, when given);
 * rejects with a RelayError of `kind`: a sentence for a network failure, the
 * server's own sentence and code for a refusal.
 */
export async function requestJson(fetchImpl, url, { method = "GET", body, headers = {}, kind = "request",
  networkMessage = "Could not reach Relay. Check your connection and try again.", accept } = {}) {
  const init = { method, headers: { Accept: "application/json", ...headers } };
  if (body !== undefined) {
    init.body = JSON.stringify(body);
    init.headers["Content-Type"] = "application/json";
  }
  let response;
  try {
    response = await fetchImpl(url, init);
  } catch {
    throw new RelayError(networkMessage, { code: "network_error", kind });
  }
  const json = await readJson(response);
  if (!response.ok || !json || json.success === false || (accept && !accept(json))) {
    throw RelayError.fromResponse(response, json, kind);
  }
  return json;
}

/**
 * A fresh key for one logical create (the `Idempotency-Key` header): a random UUID from the
 * platform's crypto, else 128 random bits from getRandomValues, else (very old browsers) from
 * `random`, which is weaker but still unique enough to tell one visitor's creates apart.
 */
export function newIdempotencyKey(env) {
  const crypto = env.crypto;
  if (crypto && typeof crypto.randomUUID === "function") return crypto.randomUUID();
  const bytes = new Uint8Array(16);
  if (crypto && typeof crypto.getRandomValues === "function") {
    crypto.getRandomValues(bytes);
  } else {
    for (let i = 0; i < bytes.length; i += 1) bytes[i] = Math.floor(env.random() * 256);
  }
  return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
}

/** Report a throw from someone else's code: to `onHandlerError` when given, else to the console. */
export function reportHandlerError(onHandlerError, error, where) {
  if (typeof onHandlerError === "function") {
    try {
      onHandlerError(error, where);
      return;
    } catch {
      // fall through to the console
    }
  }
  if (typeof console !== "undefined" && console.warn) {
    console.warn("RelayClient: a handler threw in " + where + "; the stream goes on.", error);
  }
}

/**
 * The one way to call code the client does not own (user callbacks, the
 * connection's listeners): a throw is reported and never reaches the stream.
 */
export function callSafely(fn, args, where, onHandlerError) {
  if (typeof fn !== "function") return undefined;
  try {
    return fn(...args);
  } catch (err) {
    reportHandlerError(onHandlerError, err, where);
    return undefined;
  }
}

/** The browser facilities the client uses; each can be replaced through options (tests do). */
export function resolveEnvironment(options = {}) {
  const g = typeof globalThis !== "undefined" ? globalThis : {};
  const pick = (name, fallback) => (Object.prototype.hasOwnProperty.call(options, name) ? options[name] : fallback);
  return {
    EventSource: pick("EventSource", g.EventSource),
    fetch: pick("fetch", g.fetch ? g.fetch.bind(g) : undefined),
    setTimeout: pick("setTimeout", g.setTimeout ? g.setTimeout.bind(g) : undefined),
    clearTimeout: pick("clearTimeout", g.clearTimeout ? g.clearTimeout.bind(g) : undefined),
    random: pick("random", Math.random),
    now: pick("now", Date.now),
    crypto: pick("crypto", g.crypto),
    document: pick("document", g.document),
    window: pick("window", g.window),
    navigator: pick("navigator", g.navigator),
    AbortController: pick("AbortController", g.AbortController),
    BroadcastChannel: pick("BroadcastChannel", g.BroadcastChannel),
    locks: pick("locks", g.navigator && g.navigator.locks ? g.navigator.locks : undefined),
  };
}

/** Length in Unicode code points (the server's unit for log offsets). */
export function codePointLength(text) {
  let count = 0;
  for (let i = 0; i < text.length; i += 1) {
    const unit = text.charCodeAt(i);
    // A high surrogate followed by a low one is one code point.
    if (unit >= 0xd800 && unit <= 0xdbff && i + 1 < text.length) {
      const next = text.charCodeAt(i + 1);
      if (next >= 0xdc00 && next <= 0xdfff) i += 1;
    }
    count += 1;
  }
  return count;
}

/** `text` without its first `points` code points. */
export function dropCodePoints(text, points) {
  let i = 0;
  for (let n = 0; n < points && i < text.length; n += 1) {
    const unit = text.charCodeAt(i);
    i += unit >= 0xd800 && unit <= 0xdbff && i + 1 < text.length ? 2 : 1;
  }
  return text.slice(i);
}

/**
 * A prediction's log as this connection knows it (docs/openapi.yaml): `text` is the
 * log from code point `offset` to `length`. A snapshot with `logs` and
 * `logs_offset` (re)sets it (the first snapshot, or a rewrite); one with
 * `logs` but no `logs_offset` is an older server's whole log; `logs: null`
 * changes nothing. A delta at the end appends; one that overlaps what is
 * known adds only its new part (so a resume never doubles a line); one past
 * the end (text was missed) starts the known part over at its offset.
 * Each method returns whether the text changed.
 */
export class LogBook {
  constructor() {
    this.text = null;
    this.offset = 0;
    this.length = 0;
  }

  applySnapshot(snapshot) {
    const logs = snapshot.logs;
    if (typeof logs !== "string") {
      if (logs === undefined && this.text === null) return this.reset("", 0);
      return false;
    }
    const offset = typeof snapshot.logs_offset === "number" ? snapshot.logs_offset : 0;
    if (offset === this.offset && logs === this.text) return false;
    return this.reset(logs, offset);
  }

  applyDelta(delta) {
    if (!delta || typeof delta.text !== "string" || typeof delta.offset !== "number") return false;
    if (this.text === null) return this.reset(delta.text, delta.offset);
    if (delta.offset > this.length) return this.reset(delta.text, delta.offset);
    const fresh = dropCodePoints(delta.text, this.length - delta.offset);
    if (fresh === "") return false;
    this.text += fresh;
    this.length += codePointLength(fresh);
    return true;
  }

  reset(text, offset) {
    this.text = text;
    this.offset = offset;
    this.length = offset + codePointLength(text);
    return true;
  }
}
