"""`python -m relay.emulator` started by a test: on a loopback port, with TLS and a token.

The official clients' tests run against this process exactly as they would
against api.replicate.com: HTTPS (the emulator's own self-signed certificate,
trusted through SSL_CERT_FILE / NODE_EXTRA_CA_CERTS), a required bearer token,
file outputs as `https://` URLs.
"""

from __future__ import annotations

import os
import re
import ssl
import subprocess
import sys
import time
from pathlib import Path

import httpx

REPO = Path(__file__).resolve().parents[2]
TOKEN = "r8_emulator_test_token_0123456789"


class Standalone:
    def __init__(self, state_dir: Path, *, tls: bool = True, token: str | None = TOKEN,
                 extra: tuple[str, ...] = ()) -> None:
        args = [sys.executable, "-m", "relay.emulator", "--port", "0", "--state-dir", str(state_dir), "--faults"]
        if tls:
            args.append("--tls")
        if token is not None:
            args += ["--token", token]
        args += list(extra)
        env = {k: v for k, v in os.environ.items() if k != "RELAY_EMULATOR_TOKEN"}
        self.token = token
        self.process = subprocess.Popen(args, cwd=REPO, env=env, stdout=subprocess.PIPE,
                                        stderr=subprocess.STDOUT, text=True)
        self.url = ""
        self.cert: str | None = None
        assert self.process.stdout is not None
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and (not self.url or (tls and self.cert is None)):
            line = self.process.stdout.readline()
            if not line:
                raise RuntimeError(f"the emulator exited with {self.process.wait()}")
            if match := re.search(r"listening on (\S+)", line):
                self.url = match.group(1)
            if match := re.search(r"certificate: (\S+)", line):
                self.cert = match.group(1)
        if not self.url:
            raise RuntimeError("the emulator did not say where it listens")

    def verify(self) -> ssl.SSLContext | bool:
        return ssl.create_default_context(cafile=self.cert) if self.cert else True

    def http(self, *, token: bool = True) -> httpx.Client:
        headers = {"Authorization": f"Bearer {self.token}"} if self.token and token else {}
        return httpx.Client(base_url=self.url, headers=headers, verify=self.verify(), timeout=30)

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        if self.process.stdout is not None:
            self.process.stdout.close()
