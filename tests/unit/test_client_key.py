"""The key a client is counted under (relay/limits.py): its address, an IPv6 host by its /64."""

from __future__ import annotations

import pytest
from flask import Flask

from relay.limits import client_key


@pytest.mark.parametrize(("address", "key"), [
    ("203.0.113.7", "203.0.113.7"),
    ("::ffff:203.0.113.7", "203.0.113.7"),  # an IPv4 client on a dual-stack socket
    ("2001:db8:1:2:3:4:5:6", "2001:db8:1:2::/64"),
    ("2001:db8:1:2::9", "2001:db8:1:2::/64"),
    ("", "unknown"),
])
def test_client_key(address: str, key: str) -> None:
    with Flask(__name__).test_request_context(environ_base={"REMOTE_ADDR": address}):
        assert client_key() == key
