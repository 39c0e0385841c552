/*
 * useRelay: Relay's client as a React hook (React >= 18, imported as "react").
 *
 *   const relay = useRelay();                       // this page's origin
 *   useEffect(() => { relay.start("relay/image-demo", { prompt }); }, []);
 *   relay.phase, relay.status, relay.progress, relay.estimate, relay.output,
 *   relay.logs, relay.connection, relay.error, relay.cancel()
 *
 * Lifetime: the hook owns one RelayClient at a time. Unmounting closes it,
 * but one tick later (a zero timeout that a remount clears), because
 * <StrictMode> unmounts and remounts every component once on purpose: that
 * rehearsal must not close the stream, and a start() repeated by the
 * rehearsal (same model and input while the first still runs) answers the
 * first call's promise instead of posting again. So a component that calls
 * start() once from a mount effect makes one POST and opens one stream.
 *
 * Streams go over one RelayTabs per API root, shared by every hook of the
 * page and every tab of the origin (shareTabs: false gives each client its
 * own connection).
 */
import { useCallback, useEffect, useRef, useState } from "react";
import { RelayClient } from "./client.js";
import { RelayTabs } from "./tabs.js";
import { isTerminalPhase } from "./wire.js";

const INITIAL = Object.freeze({
  phase: "idle",
  status: null,
  progress: null,
  estimate: null,
  output: null,
  text: "",
  logs: "",
  connection: "connected",
  error: null,
});

const sharedByRoot = new Map();

function sharedTabs(options) {
  const root = options.apiRoot || "";
  let tabs = sharedByRoot.get(root);
  if (!tabs) {
    tabs = new RelayTabs({ apiRoot: root, heartbeatMs: options.heartbeatMs });
    sharedByRoot.set(root, tabs);
  }
  return tabs;
}

function connectionWord(info) {
  if (typeof navigator !== "undefined" && navigator.onLine === false) return "offline";
  if (info.state === "reconnecting") return "reconnecting";
  if (info.state === "offline" || info.state === "failed") return "offline";
  return "connected";
}

function plainError(error) {
  return error ? { message: error.message, code: error.code || "error" } : null;
}

export function useRelay(options = {}) {
  const optionsRef = useRef(options);
  optionsRef.current = options;
  const [state, setState] = useState(INITIAL);
  const box = useRef(null);
  if (box.current === null) box.current = { client: null, key: null, promise: null, closeTimer: null, mounted: false };

  const makeClient = useCallback(() => {
    const current = optionsRef.current;
    const update = (fields) => setState((previous) => ({ ...previous, ...fields }));
    const settings = {
      ...current,
      onState: (s) => update({ phase: s.phase, error: plainError(s.error) }),
      onStatus: (status) => update({ status }),
      onProgress: (progress) => update({ progress }),
      onSnapshot: (snapshot) => update({ estimate: snapshot.estimate || null, output: snapshot.output ?? null }),
      onOutput: (output) => update({ output: output.value ?? null, text: output.text || "" }),
      onLogs: (logs) => update({ logs: logs || "" }),
      onConnection: (info) => update({ connection: connectionWord(info) }),
      onError: (error) => update({ error: plainError(error) }),
    };
    if (current.shareTabs !== false && !current.multiplex) settings.multiplex = sharedTabs(current);
    return new RelayClient(settings);
  }, []);

  useEffect(() => {
    const held = box.current;
    held.mounted = true;
    if (held.closeTimer !== null) {
      clearTimeout(held.closeTimer);
      held.closeTimer = null;
    }
    const streamUrl = optionsRef.current.streamUrl;
    if (streamUrl && !held.client) {
      held.client = makeClient();
      held.key = "follow " + streamUrl;
      held.client.follow(streamUrl);
    }
    return () => {
      held.mounted = false;
      held.closeTimer = setTimeout(() => {
        held.closeTimer = null;
        if (held.mounted || !held.client) return;
        held.client.close();
        held.client = null;
        held.key = null;
        held.promise = null;
      }, 0);
    };
  }, [makeClient]);

  const start = useCallback((model, input) => {
    const held = box.current;
    const key = JSON.stringify([model, input]);
    if (held.client && held.key === key && !isTerminalPhase(held.client.phase)) return held.promise;
    if (held.client) held.client.close();
    const client = makeClient();
    held.client = client;
    held.key = key;
    setState({ ...INITIAL, phase: "submitting" });
    held.promise = client.start(model, input).catch(() => null);
    return held.promise;
  }, [makeClient]);

  const cancel = useCallback(() => {
    const client = box.current.client;
    return client ? client.cancel().catch(() => null) : Promise.resolve(null);
  }, []);

  return { ...state, start, cancel };
}
