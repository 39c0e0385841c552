"""No script in static/ posts a message to any origin ("*"): each names its one target."""

from __future__ import annotations

import re

from testbed import ROOT


def test_no_script_in_static_posts_a_message_to_any_origin() -> None:
    any_origin = re.compile(r"""postMessage\s*\((?:[^()]|\([^()]*\))*?["'`]\*["'`]""", re.S)
    target_any = re.compile(r"""targetOrigin\s*:\s*["'`]\*["'`]""")
    offenders = [path.name for path in sorted((ROOT / "static").rglob("*"))
                 if path.suffix in (".js", ".mjs", ".html")
                 and (any_origin.search(path.read_text()) or target_any.search(path.read_text()))]
    assert offenders == []
    assert "postMessage" in (ROOT / "static" / "embed.js").read_text()  # the check looks at the right files
