// ES module face of relay-client.js. That file is a classic script so that a
// plain <script> tag can load it too; importing it here runs it once (in
// browsers and node alike) and it leaves its API on globalThis.RelayClient,
// which this module re-exports under ES names. One source, no build step.
import "./relay-client.js";

const api = globalThis.RelayClient;

export const RelayClient = api;
export const RelayMultiplex = api.Multiplex;
export const StreamConnection = api.StreamConnection;
export const RelayError = api.RelayError;
export const backoffDelay = api.backoffDelay;
export const composeEventId = api.composeEventId;
export const parseEventId = api.parseEventId;
export const isTerminalStatus = api.isTerminalStatus;
export default api;
