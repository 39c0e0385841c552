/*
 * Relay's browser client as ES modules (load with <script type="module"> or
 * import from a bundler). RelayClient follows one prediction; RelayMultiplex
 * carries several over one connection; RelayTabs shares that connection
 * between the tabs of one origin. static/relay-client.js is the same code
 * built as a classic script that defines window.RelayClient.
 *
 *   import { RelayClient, RelayTabs } from "/static/client/index.js";
 *   const client = new RelayClient({ onStatus, onProgress, onOutput, onLogs, onSuccess, onError });
 *   await client.start("relay/image-demo", { prompt: "a fox" });
 */
import { RelayClient } from "./client.js";
import { StreamConnection } from "./connection.js";
import { RelayMultiplex } from "./multiplex.js";
import { RelayTabs } from "./tabs.js";
import {
  LogBook, RelayError, backoffDelay, callSafely, composeEventId, isTerminalStatus, parseEventId, requestJson,
  withQuery,
} from "./wire.js";

// The classic script's names (RelayClient.Multiplex and friends) stay on the class.
Object.assign(RelayClient, {
  Multiplex: RelayMultiplex,
  Tabs: RelayTabs,
  StreamConnection,
  RelayError,
  LogBook,
  backoffDelay,
  composeEventId,
  parseEventId,
  isTerminalStatus,
  withQuery,
  requestJson,
});

export {
  RelayClient, RelayMultiplex, RelayTabs, StreamConnection, RelayError, LogBook, backoffDelay, callSafely,
  composeEventId, parseEventId, isTerminalStatus, requestJson, withQuery,
};
export default RelayClient;
