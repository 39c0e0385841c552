"""Which output URLs Relay copies, and the signatures of kept files (relay/keeper.py, relay/storage.py)."""

from __future__ import annotations

from pathlib import Path

from relay.keeper import Keeper
from relay.storage import FileStorage, valid_key


def keeper(tmp_path: Path, emulator: str | None = None) -> Keeper:
    return Keeper(FileStorage(tmp_path), "secret-for-keeper-tests-0123456789", max_bytes=1024,
                  emulator_base=lambda: emulator)


def test_only_replicate_delivery_hosts_and_the_emulator_are_fetched(tmp_path: Path) -> None:
    k = keeper(tmp_path, "http://127.0.0.1:9/emulator")
    assert k.allowed("https://replicate.delivery/pbxt/abc/out.png")
    assert k.allowed("https://pbxt.replicate.delivery/abc/out.png")
    assert k.allowed("http://127.0.0.1:9/emulator/files/abc/output.png")
    assert not k.allowed("http://replicate.delivery/abc/out.png")  # not HTTPS
    assert not k.allowed("https://replicate.delivery.evil.example/out.png")
    assert not k.allowed("https://evilreplicate.delivery/out.png")
    assert not k.allowed("http://127.0.0.1:9/emulator/v1/predictions")
    assert not k.allowed("http://169.254.169.254/latest/meta-data")
    assert not keeper(tmp_path).allowed("http://127.0.0.1:9/emulator/files/abc/output.png")
    # The embedded emulator's root-relative paths are its files on its own origin; nothing else is.
    assert k.allowed("/emulator/files/abc/output.png")
    assert not k.allowed("/emulator/v1/predictions")
    assert not k.allowed("//evil.example/emulator/files/abc/output.png")
    assert not k.allowed("/emulator/files/../v1/predictions")
    assert not keeper(tmp_path).allowed("/emulator/files/abc/output.png")


def test_text_outputs_are_left_alone(tmp_path: Path) -> None:
    assert keeper(tmp_path).keep("abc", ["Once", " upon", " a time"]) is None


def test_kept_urls_are_signed_and_a_forged_signature_is_refused(tmp_path: Path) -> None:
    k = keeper(tmp_path)
    url = k.url_for("runs/abc/0/output.png")
    signature = url.split("sig=")[1]
    assert k.verify("runs/abc/0/output.png", signature)
    assert not k.verify("runs/abd/0/output.png", signature)
    assert not k.verify("runs/abc/0/output.png", "forged")
    assert not k.verify("runs/abc/0/output.png", None)


def test_storage_keys_cannot_leave_the_folder(tmp_path: Path) -> None:
    assert valid_key("runs/abc/0/output.png")
    assert not valid_key("runs/../secret_key")
    assert not valid_key("/etc/passwd")
    assert not valid_key("runs/abc/x/../../y")
    assert FileStorage(tmp_path).open("runs/../../etc/passwd") is None
