// Types for Relay's browser client (index.js) and its React hook (react.js).
// Checked with `tsc --noEmit --strict` against tests/js/types/usage.ts (and
// tests/js/types/wrong-*.ts, which must be rejected).

/** The client's state machine (README's JavaScript section). */
export type Phase =
  | "idle" | "submitting" | "streaming" | "reconnecting"
  | "succeeded" | "failed" | "canceled" | "error";

/** A prediction's status as the server reports it. */
export type PredictionStatus =
  | "queued" | "starting" | "processing" | "succeeded" | "failed" | "canceled" | "aborted";

export type TerminalStatus = "succeeded" | "failed" | "canceled" | "aborted";

/** Progress read from the logs; every field null where the logs say nothing of it. */
export interface Progress {
  percent: number | null;
  current: number | null;
  total: number | null;
  eta_seconds: number | null;
  step: string | null;
}

/** A wait estimated from this deployment's past runs of the model (docs/runs.md). */
export interface Estimate {
  start_in: number | null;
  finish_in: number | null;
  based_on: number;
}

/** Where a queued prediction stands in Relay's queue (docs/spend-guard.md); 1 is next. */
export interface QueuePosition {
  position: number;
}

export type JsonValue = string | number | boolean | null | JsonValue[] | { [key: string]: JsonValue };

/** The whole state of a prediction, as one snapshot event carries it. */
export interface Snapshot {
  id: string;
  status: PredictionStatus;
  output: JsonValue;
  error: string | null;
  /** The log's tail (first snapshot of a connection, or a rewrite), the whole log (older servers), or null. */
  logs: string | null;
  /** Where `logs` starts in the full log, in code points; absent on older servers. */
  logs_offset?: number;
  /** The full log's length in code points; absent on older servers. */
  logs_length?: number;
  progress: Progress | null;
  estimate?: Estimate;
  queue?: QueuePosition | null;
  metrics: { [key: string]: JsonValue } | null;
  created_at: string | null;
  started_at: string | null;
  completed_at: string | null;
}

/** An `event: logs` delta: text appended to the log at `offset` (code points). */
export interface LogDelta {
  id: string;
  offset: number;
  text: string;
}

export type ConnectionState = "idle" | "connecting" | "open" | "reconnecting" | "offline" | "closed" | "failed";

export interface ConnectionInfo {
  state: ConnectionState;
  attempt: number;
  /** When the next attempt is due (ms since the epoch), or null. */
  nextRetryAt: number | null;
}

export interface UpstreamInfo {
  state: "ok" | "degraded";
  error: string | null;
  retryIn: number | null;
}

export interface OutputUpdate {
  /** The latest snapshot's output (authoritative). */
  value: JsonValue;
  /** Text outputs: the text so far, including streamed chunks; null for other outputs. */
  text: string | null;
  /** The chunk that just arrived, or null when a snapshot changed the output. */
  delta: string | null;
}

export interface ClientState {
  phase: Phase;
  status: PredictionStatus | null;
  id: string | null;
  attempt: number;
  nextRetryAt: number | null;
  connection: ConnectionState;
  error: RelayError | null;
}

export type ErrorKind = "request" | "stream" | "prediction" | "cancel";

/** An error the client reports; `message` is a sentence for a person. */
export class RelayError extends Error {
  constructor(message: string, details?: { code?: string; status?: number | null; kind?: ErrorKind; retryAfterMs?: number });
  readonly name: "RelayError";
  code: string;
  status: number | null;
  kind: ErrorKind;
  retryAfterMs: number;
}

/** The create answer (POST /api/predictions). */
export interface CreatedPrediction {
  success: true;
  id: string;
  status: PredictionStatus;
  stream_url: string;
  cancel_url: string;
}

export interface CancelAnswer {
  success: true;
  id: string;
  status: PredictionStatus;
}

export interface Callbacks {
  onState?: (state: ClientState) => void;
  onStatus?: (status: PredictionStatus, snapshot: Snapshot | null) => void;
  onProgress?: (progress: Progress, snapshot: Snapshot) => void;
  onOutput?: (output: OutputUpdate) => void;
  onLogs?: (logs: string, snapshot: Snapshot | null) => void;
  onSnapshot?: (snapshot: Snapshot) => void;
  onConnection?: (info: ConnectionInfo) => void;
  onUpstream?: (upstream: UpstreamInfo) => void;
  onSuccess?: (snapshot: Snapshot) => void;
  onError?: (error: RelayError) => void;
}

/** How the client reaches the network and the clock; tests pass fakes. */
export interface Environment {
  EventSource?: { new (url: string): EventSource };
  fetch?: typeof fetch;
  setTimeout?: (fn: () => void, ms: number) => unknown;
  clearTimeout?: (id: unknown) => void;
  random?: () => number;
  now?: () => number;
  /** Where Idempotency-Keys come from (randomUUID or getRandomValues); globalThis.crypto by default. */
  crypto?: Pick<Crypto, "getRandomValues"> & { randomUUID?: () => string };
  document?: Document;
  window?: Window;
  navigator?: Navigator;
  AbortController?: typeof AbortController;
  BroadcastChannel?: typeof BroadcastChannel;
  locks?: LockManager;
}

export interface StreamOptions extends Environment {
  /** Relay's root URL, "" (this page's origin) by default. */
  apiRoot?: string;
  heartbeatMs?: number;
  stallMs?: number;
  retryBaseMs?: number;
  retryMaxMs?: number;
  maxAttempts?: number;
  /** Called when a callback throws; the stream goes on either way. */
  onHandlerError?: (error: unknown, where: string) => void;
}

export interface ClientOptions extends StreamOptions, Callbacks {
  /** Follow over a shared connection instead of one of the client's own. */
  multiplex?: RelayMultiplex | RelayTabs;
  /** A grant from the host site's backend, sent on create as `Authorization: Relay-Grant <grant>`. */
  grant?: string;
  /** How many times in all a create is sent when it fails with a network error (same Idempotency-Key); 3. */
  createAttempts?: number;
}

export interface FollowDetails {
  id?: string;
  cancelUrl?: string;
  /** Resume after this event id (a reload that kept it). */
  lastEventId?: string;
}

export class RelayClient {
  constructor(options?: ClientOptions);
  readonly phase: Phase;
  readonly status: PredictionStatus | null;
  readonly snapshot: Snapshot | null;
  readonly progress: Progress | null;
  readonly error: RelayError | null;
  readonly connection: ConnectionInfo;
  readonly upstream: UpstreamInfo;
  readonly text: string;
  /** The log as reassembled so far (from `logsOffset` on), or null before any. */
  readonly logs: string | null;
  readonly logsOffset: number;
  /** GET /api/predictions/<id>/logs?token=… once following, else null. */
  readonly logsUrl: string | null;
  readonly lastEventId: string;
  /** The Idempotency-Key start() sent (the same on each of its retries), null before start(). */
  readonly idempotencyKey: string | null;
  readonly state: ClientState;
  start(model: string, input: { [key: string]: JsonValue }): Promise<CreatedPrediction>;
  follow(streamUrl: string, details?: FollowDetails): void;
  cancel(): Promise<CancelAnswer | null>;
  close(): void;

  static Multiplex: typeof RelayMultiplex;
  static Tabs: typeof RelayTabs;
  static StreamConnection: typeof StreamConnection;
  static RelayError: typeof RelayError;
  static LogBook: typeof LogBook;
  static backoffDelay: typeof backoffDelay;
  static composeEventId: typeof composeEventId;
  static parseEventId: typeof parseEventId;
  static isTerminalStatus: typeof isTerminalStatus;
  static withQuery: typeof withQuery;
  static requestJson: typeof requestJson;
}

export interface MultiplexOptions extends StreamOptions {
  eventsUrl?: string;
  onConnection?: (info: ConnectionInfo) => void;
}

/** Several predictions over one /api/events connection. */
export class RelayMultiplex {
  constructor(options?: MultiplexOptions);
  readonly connectionInfo: ConnectionInfo;
  reconnectNow(): void;
  close(): void;
}

/** RelayMultiplex shared by the tabs of one origin: one stream per browser. */
export class RelayTabs {
  constructor(options?: MultiplexOptions & { name?: string });
  readonly isLeader: boolean;
  readonly connectionInfo: ConnectionInfo;
  reconnectNow(): void;
  close(): void;
}

export interface StreamConnectionOptions extends Pick<StreamOptions,
  "heartbeatMs" | "stallMs" | "retryBaseMs" | "retryMaxMs" | "maxAttempts" | "onHandlerError"> {
  env: Required<Pick<Environment, "EventSource" | "fetch" | "setTimeout" | "clearTimeout" | "random" | "now">> & Environment;
  buildUrl: (lastEventId: string) => string;
  onEvent: (type: "message" | "output" | "logs" | "upstream" | "done", data: unknown, lastEventId: string) => void;
  onState?: (info: ConnectionInfo) => void;
  onStop?: (reason: "ended" | "fatal" | "exhausted", error: RelayError | null) => void;
  lastEventId?: string;
}

/** One reconnecting EventSource. */
export class StreamConnection {
  constructor(options: StreamConnectionOptions);
  readonly state: ConnectionState;
  readonly lastEventId: string;
  start(): void;
  reconnectNow(): void;
  close(): void;
}

/** A log rebuilt from a snapshot's tail and `event: logs` deltas. */
export class LogBook {
  readonly text: string | null;
  readonly offset: number;
  readonly length: number;
  applySnapshot(snapshot: Pick<Snapshot, "logs" | "logs_offset">): boolean;
  applyDelta(delta: Pick<LogDelta, "offset" | "text">): boolean;
}

export function backoffDelay(attempt: number, baseMs: number, maxMs: number, random: () => number): number;
export function composeEventId(positions: ReadonlyArray<string>): string;
export function parseEventId(eventId: string, count: number): string[] | null;
export function isTerminalStatus(status: string): status is TerminalStatus;
export function withQuery(url: string, params: { [key: string]: string | number | null | undefined | ReadonlyArray<string> }): string;
export function callSafely<A extends unknown[], R>(fn: ((...args: A) => R) | null | undefined, args: A, where: string,
  onHandlerError?: (error: unknown, where: string) => void): R | undefined;
export function requestJson<T = { [key: string]: JsonValue }>(fetchImpl: typeof fetch, url: string, options?: {
  method?: string;
  body?: JsonValue;
  headers?: { [name: string]: string };
  kind?: ErrorKind;
  networkMessage?: string;
  accept?: (body: T) => boolean;
}): Promise<T>;

export default RelayClient;

/* ---------------- react.js (typed here; react.d.ts points at these) ---------------- */

export type ConnectionWord = "connected" | "reconnecting" | "offline";

export interface UseRelayOptions extends StreamOptions, Pick<ClientOptions, "grant" | "createAttempts"> {
  /** Follow this stream instead of starting one (e.g. a run kept from before a reload). */
  streamUrl?: string;
  /** Share one stream per browser between tabs (default true). */
  shareTabs?: boolean;
}

export interface UseRelayResult {
  phase: Phase;
  status: PredictionStatus | null;
  progress: Progress | null;
  estimate: Estimate | null;
  output: JsonValue;
  /** Text outputs as they stream (chunks included); "" for others. */
  text: string;
  logs: string;
  connection: ConnectionWord;
  error: { message: string; code: string } | null;
  start(model: string, input: { [key: string]: JsonValue }): Promise<CreatedPrediction | null>;
  cancel(): Promise<CancelAnswer | null>;
}

export type UseRelay = (options?: UseRelayOptions) => UseRelayResult;
