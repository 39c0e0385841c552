// A small React app that uses useRelay the way the README shows, for
// tests/browser/test_react.py. It is bundled by the test with esbuild (React
// in development mode, so <StrictMode> rehearses every mount).
import { StrictMode, useEffect, useState } from "react";
import { createRoot } from "react-dom/client";
import { useRelay } from "../../../static/client/react.js";

const params = new URLSearchParams(window.location.search);
const input = { prompt: "a fox made of paper", steps: Number(params.get("steps") || 10), step_delay: Number(params.get("delay") || 0.05) };

function Prediction() {
  const relay = useRelay();
  useEffect(() => {
    relay.start("relay/image-demo", input);
  }, []);
  const percent = relay.progress && relay.progress.percent !== null ? Math.round(relay.progress.percent) : 0;
  const image = Array.isArray(relay.output) ? relay.output[0] : null;
  return (
    <article aria-label="Prediction" data-phase={relay.phase}>
      <p role="status">{relay.status || relay.phase}</p>
      <div role="progressbar" aria-label="Progress" aria-valuenow={percent} aria-valuemin={0} aria-valuemax={100} />
      <p data-testid="connection">{relay.connection}</p>
      <pre aria-label="Logs">{relay.logs}</pre>
      {image ? <img src={image} alt={"Generated image for: " + input.prompt} /> : null}
      {relay.error ? <p role="alert">{relay.error.message}</p> : null}
      <button type="button" onClick={() => relay.cancel()}>Cancel</button>
    </article>
  );
}

function App() {
  const [shown, setShown] = useState(true);
  return (
    <main>
      {shown ? <Prediction /> : <p>Unmounted</p>}
      <button type="button" onClick={() => setShown(false)}>Unmount</button>
    </main>
  );
}

createRoot(document.getElementById("root")).render(<StrictMode><App /></StrictMode>);
