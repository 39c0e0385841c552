// Types of react.js; they are declared in index.d.ts with the rest.
import type { UseRelay } from "./index.js";
export type { UseRelayOptions, UseRelayResult, ConnectionWord } from "./index.js";
export declare const useRelay: UseRelay;
