"""Heroku-style Redis: `rediss://` with a self-signed certificate, against a real TLS redis-server."""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest
import redis

from relay import ConfigError, create_app
from testbed import TEST_SECRET, RelayServer, free_port, wait_until
from testbed.sse import follow


@pytest.fixture
def tls_redis(tmp_path: Path) -> Iterator[str]:
    """A redis-server answering only TLS, with a certificate made here and signed by itself."""
    binary, openssl = shutil.which("redis-server"), shutil.which("openssl")
    if binary is None or openssl is None:
        pytest.skip("needs redis-server and openssl")
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run([openssl, "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=localhost",
                    "-keyout", str(key), "-out", str(cert)], check=True, capture_output=True)
    port = free_port()
    process = subprocess.Popen(
        [binary, "--port", "0", "--tls-port", str(port), "--bind", "127.0.0.1", "--tls-cert-file", str(cert),
         "--tls-key-file", str(key), "--tls-ca-cert-file", str(cert), "--tls-auth-clients", "no",
         "--save", "", "--appendonly", "no", "--dir", str(tmp_path)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"rediss://127.0.0.1:{port}/0"

    def answers() -> bool:
        try:
            return bool(redis.Redis.from_url(url, ssl_cert_reqs="none", ssl_check_hostname=False,
                                             socket_connect_timeout=0.3).ping())
        except (redis.RedisError, OSError):
            return False

    try:
        wait_until(answers, timeout=10)
        yield url
    finally:
        process.terminate()
        process.wait(10)


def test_relay_starts_and_streams_over_tls_without_verification(
        tls_redis: str, start_server: Callable[..., RelayServer]) -> None:
    server = start_server({"REDIS_URL": tls_redis, "RELAY_REDIS_VERIFY_TLS": "0"}, workers=2)
    with httpx.Client(base_url=server.url, timeout=10) as client:
        assert client.get("/healthz").json()["hub"] == {"kind": "redis", "ok": True}
        created = client.post("/api/predictions", json={"model": "relay/image-demo", "input": {
            "prompt": "over tls", "steps": 3, "step_delay": 0.05, "boot_delay": 0}}).json()
        events = follow(client, created["stream_url"])
    assert events[-1].kind == "done" and events[-1].data["status"] == "succeeded"
    stored = redis.Redis.from_url(tls_redis, ssl_cert_reqs="none", ssl_check_hostname=False)
    assert stored.dbsize() > 0  # the events went through this Redis


def test_with_verification_on_the_start_fails_with_a_clear_message(tls_redis: str, tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as raised:
        create_app({"SECRET_KEY": TEST_SECRET, "INSTANCE_PATH": str(tmp_path / "i"), "REDIS_URL": tls_redis})
    assert "RELAY_REDIS_VERIFY_TLS=0" in str(raised.value)
    assert "certificate" in str(raised.value)
