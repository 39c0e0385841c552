"""In-page instruments for browser tests: every EventSource and timer a page makes.

INSTRUMENT is an init script (page.add_init_script) that wraps EventSource,
setTimeout and setInterval, so a test can read how many streams a page opened,
which are still open, and which timers are still pending.
"""

from typing import Any

INSTRUMENT = """
(() => {
  const sources = [];
  const Native = window.EventSource;
  window.EventSource = class extends Native {
    constructor(url, init) {
      super(url, init);
      this.openedAt = Date.now();
      sources.push(this);
    }
  };
  const pendingTimeouts = new Set();
  const intervals = new Set();
  const nativeSetTimeout = window.setTimeout.bind(window);
  const nativeClearTimeout = window.clearTimeout.bind(window);
  const nativeSetInterval = window.setInterval.bind(window);
  const nativeClearInterval = window.clearInterval.bind(window);
  window.setTimeout = (fn, ms, ...args) => {
    const id = nativeSetTimeout((...a) => {
      pendingTimeouts.delete(id);
      if (typeof fn === 'function') fn(...a);
    }, ms, ...args);
    pendingTimeouts.add(id);
    return id;
  };
  window.clearTimeout = (id) => { pendingTimeouts.delete(id); nativeClearTimeout(id); };
  window.setInterval = (fn, ms, ...args) => {
    const id = nativeSetInterval(fn, ms, ...args);
    intervals.add(id);
    return id;
  };
  window.clearInterval = (id) => { intervals.delete(id); nativeClearInterval(id); };
  window.relayInstruments = {
    streams: () => sources.map((s) => ({ url: s.url, state: s.readyState })),
    openStreams: () => sources.filter((s) => s.readyState !== 2).map((s) => s.url),
    pendingTimers: () => pendingTimeouts.size + intervals.size,
  };
})();
"""


def streams(page: Any) -> list[dict[str, Any]]:
    result: list[dict[str, Any]] = page.evaluate("window.relayInstruments.streams()")
    return result


def open_streams(page: Any) -> list[str]:
    result: list[str] = page.evaluate("window.relayInstruments.openStreams()")
    return result
