// Entry of the classic-script build (static/relay-client.js): the ES modules
// bundled by esbuild into one script that defines window.RelayClient.
import { RelayClient } from "./index.js";

globalThis.RelayClient = RelayClient;
