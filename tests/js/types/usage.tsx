// Correct use of every public name of static/client (index.js and react.js):
// `tsc --noEmit --strict -p tests/js/types` must accept all of it.
import { StrictMode, useEffect } from "react";
import RelayClientDefault, {
  LogBook, RelayClient, RelayError, RelayMultiplex, RelayTabs, StreamConnection, backoffDelay, callSafely,
  composeEventId, isTerminalStatus, parseEventId, requestJson, withQuery,
} from "../../../static/client/index.js";
import type {
  CancelAnswer, ClientOptions, ClientState, ConnectionInfo, ConnectionState, ConnectionWord, CreatedPrediction,
  Estimate, JsonValue, LogDelta, OutputUpdate, Phase, PredictionStatus, Progress, QueuePosition, Snapshot,
  UpstreamInfo, UseRelayOptions, UseRelayResult,
} from "../../../static/client/index.js";
import { useRelay } from "../../../static/client/react.js";

const phases: Phase[] = ["idle", "submitting", "streaming", "reconnecting", "succeeded", "failed", "canceled", "error"];

function describe(progress: Progress): string {
  const percent: number | null = progress.percent;
  const eta: number | null = progress.eta_seconds;
  return `${percent ?? "?"}% step ${progress.current ?? "?"}/${progress.total ?? "?"} ${progress.step ?? ""} ${eta ?? ""}`;
}

function wait(estimate: Estimate | undefined, queue: QueuePosition | null | undefined): string {
  const start: number | null = estimate ? estimate.start_in : null;
  const basedOn: number = estimate ? estimate.based_on : 0;
  return `${start ?? "?"} s (${basedOn} runs), ${queue ? queue.position : 0} ahead`;
}

const options: ClientOptions = {
  apiRoot: "",
  heartbeatMs: 15000,
  maxAttempts: 5,
  onState: (state: ClientState) => { const p: Phase = state.phase; void p; },
  onStatus: (status: PredictionStatus, snapshot: Snapshot | null) => { void status; void snapshot; },
  onProgress: (progress, snapshot) => { describe(progress); wait(snapshot.estimate, snapshot.queue); },
  onOutput: (output: OutputUpdate) => { const text: string | null = output.text; void text; void output.delta; },
  onLogs: (logs: string, snapshot) => {
    const offset: number | undefined = snapshot?.logs_offset;
    const length: number | undefined = snapshot?.logs_length;
    void logs; void offset; void length;
  },
  onSnapshot: (snapshot) => { const logs: string | null = snapshot.logs; void logs; },
  onConnection: (info: ConnectionInfo) => { const s: ConnectionState = info.state; void s; void info.nextRetryAt; },
  onUpstream: (upstream: UpstreamInfo) => { void upstream.retryIn; },
  onSuccess: (snapshot) => { const output: JsonValue = snapshot.output; void output; },
  onError: (error: RelayError) => { void error.code; void error.kind; void error.retryAfterMs; void error.status; },
  onHandlerError: (error: unknown, where: string) => { void error; void where; },
};

async function run(): Promise<void> {
  const multiplex = new RelayMultiplex({ apiRoot: "", onConnection: (info) => { void info.attempt; } });
  const tabs = new RelayTabs({ name: "relay" });
  const client = new RelayClient({ ...options, multiplex: tabs, grant: "payload.signature", createAttempts: 2,
    crypto: globalThis.crypto });
  const created: CreatedPrediction = await client.start("relay/image-demo", { prompt: "a fox", steps: 20 });
  const answer: CancelAnswer | null = await client.cancel();
  client.follow(created.stream_url, { id: created.id, lastEventId: "1-0" });
  const phase: Phase = client.phase;
  const logsUrl: string | null = client.logsUrl;
  const key: string | null = client.idempotencyKey;
  void key;
  void answer; void phase; void logsUrl; void tabs.isLeader; void multiplex.connectionInfo;
  client.close();
  multiplex.close();
  tabs.close();
  const other = new RelayClientDefault();
  void other.state.connection;
  void new RelayClient.Multiplex();
  void new RelayError("Try again.", { code: "x", kind: "request" });
  const book = new LogBook();
  const delta: LogDelta = { id: "p1", offset: 0, text: "line\n" };
  book.applyDelta(delta);
  book.applySnapshot({ logs: "tail", logs_offset: 10 });
  const connection = new StreamConnection({
    env: { EventSource, fetch, setTimeout: (fn, ms) => setTimeout(fn, ms), clearTimeout: () => {}, random: Math.random, now: Date.now },
    buildUrl: (last) => withQuery("/api/events", { lastEventId: last }),
    onEvent: (type, data) => { void type; void data; },
  });
  connection.start();
  connection.close();
  void backoffDelay(1, 1000, 30000, Math.random);
  void composeEventId(["a", ""]);
  void parseEventId("a,b", 2);
  const status: string = "succeeded";
  if (isTerminalStatus(status)) { const done: "succeeded" | "failed" | "canceled" | "aborted" = status; void done; }
  void callSafely((a: number) => a + 1, [1], "test");
  const models = await requestJson<{ models: { name: string }[] }>(fetch, "/api/models");
  void models.models.length;
}

export function Generator({ prompt }: { prompt: string }) {
  const hookOptions: UseRelayOptions = { apiRoot: "", grant: "payload.signature" };
  const relay: UseRelayResult = useRelay(hookOptions);
  useEffect(() => { void relay.start("relay/image-demo", { prompt }); }, []);
  const word: ConnectionWord = relay.connection;
  const error: { message: string; code: string } | null = relay.error;
  return (
    <article>
      <p role="status">{relay.status ?? relay.phase}</p>
      <progress value={relay.progress?.percent ?? 0} max={100} />
      <pre>{relay.logs}</pre>
      <p>{word} {error ? error.message : ""} {relay.estimate?.finish_in ?? ""} {relay.text}</p>
      <button onClick={() => { void relay.cancel(); }}>Cancel</button>
    </article>
  );
}

export const app = <StrictMode><Generator prompt="a fox" /></StrictMode>;
void phases; void run; void useRelay();
