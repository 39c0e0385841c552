// Wrong uses of static/client's types: each line after @ts-expect-error must
// be rejected by tsc (an unused directive is itself an error), so this file
// compiles only while the types stay strict.
import { RelayClient, RelayError } from "../../../static/client/index.js";
import type { Phase, Progress, Snapshot, UseRelayResult } from "../../../static/client/index.js";
import { useRelay } from "../../../static/client/react.js";

// @ts-expect-error "running" is not a phase
const phase: Phase = "running";

// @ts-expect-error a callback with the wrong argument type
new RelayClient({ onProgress: (progress: string) => progress.length });

// @ts-expect-error an unknown option
new RelayClient({ onProgres: () => {} });

// @ts-expect-error start needs a model name and an input object
void new RelayClient().start({ prompt: "a fox" });

// @ts-expect-error input values are JSON, not functions
void new RelayClient().start("relay/image-demo", { prompt: () => "a fox" });

declare const progress: Progress;
// @ts-expect-error percent may be null
const percent: number = progress.percent;

declare const snapshot: Snapshot;
// @ts-expect-error logs may be null (later snapshots carry only deltas)
const logs: string = snapshot.logs;

// @ts-expect-error the status is a known word
const status: Snapshot["status"] = "done";

// @ts-expect-error logs_offset is a number, and exactOptionalPropertyTypes refuses undefined written out
const withOffset: Pick<Snapshot, "logs_offset"> = { logs_offset: undefined };

// @ts-expect-error an estimate's based_on is a count, never null
const estimate: NonNullable<Snapshot["estimate"]> = { start_in: null, finish_in: null, based_on: null };

// @ts-expect-error phase is read-only on the client
new RelayClient().phase = "idle";

declare const relay: UseRelayResult;
// @ts-expect-error connection is one of three words
const word: UseRelayResult["connection"] = "open";

// @ts-expect-error the hook's logs are a string, never null
const hookLogs: null = relay.logs;

// @ts-expect-error useRelay takes options, not a model name
useRelay("relay/image-demo");

// @ts-expect-error a RelayError's kind is one of four
new RelayError("x", { kind: "network" });

void phase; void percent; void logs; void status; void withOffset; void estimate; void word; void hookLogs;

// @ts-expect-error a grant is the signed text, not its payload
new RelayClient({ grant: { sub: "someone" } });

// @ts-expect-error the create's key is read-only (start() makes it)
new RelayClient().idempotencyKey = "mine";
