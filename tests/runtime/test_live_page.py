"""The live page in a real browser: Debian's headless Chromium opens a hub's page on
loopback while streams run; the DOM shows every stream with its modalities and reasons,
and it updates. A screenshot is kept (``$HRLF_ARTIFACTS`` or a temp folder) for a person
to look at; the assertions read the DOM, not pixels."""
from __future__ import annotations

import os
import re
import tempfile

import pytest

from tests.runtime.observe_util import Feeder, chromium, demo_recording, wait_until

pytest.importorskip("prometheus_client")


def _dom(url: str, user_dir) -> str:
    # virtual time: the page polls api/live several times before the DOM is dumped
    return chromium(url, user_dir, "--virtual-time-budget=4000", "--dump-dom")


def _attrs(html: str, tag: str, cls: str) -> list[dict]:
    out = []
    for m in re.finditer(rf'<{tag} class="{cls}"([^>]*)>', html):
        out.append(dict(re.findall(r'([\w-]+)="([^"]*)"', m.group(1))))
    return out


def test_live_page_draws_streams_with_modalities_and_updates(tmp_path):
    from hrlf.runtime.hub import Hub, HubConfig
    from hrlf.runtime.session_config import SessionConfig

    hub = Hub.load("demo", config=HubConfig(metrics_port=0, stream=SessionConfig(
        live=True, no_data=True)))
    art = os.environ.get("HRLF_ARTIFACTS") or tempfile.mkdtemp(prefix="hrlf-live-page-")
    try:
        rec = demo_recording(hub.spec, 20.0)
        hub.start()
        names = ["front-camera", "call-7", "robot-arm"]
        streams = [hub.add_stream(n, config=SessionConfig(
            live=True, no_data=True, drops=[("audio", 0.0, 30.0)] if n == "call-7" else []))
            for n in names]
        feeder = Feeder(streams, rec, 14.0).start()
        url = hub.observe.url
        assert wait_until(lambda: all(s.stats()["segments"] >= 3 for s in streams), 30.0)
        first = _dom(url, tmp_path / "chromium")
        assert wait_until(lambda: all(s.stats()["segments"] >= 6 for s in streams), 30.0)
        second = _dom(url, tmp_path / "chromium")
        shot = os.path.join(art, "live-page.png")
        chromium(url, tmp_path / "chromium", "--virtual-time-budget=4000",
                 "--window-size=1300,1000", f"--screenshot={shot}")
        assert os.path.getsize(shot) > 10_000, shot
        feeder.done.wait(30)
    finally:
        hub.close()
    cards = {c["data-stream"]: c for c in _attrs(second, "section", "stream")}
    assert sorted(cards) == sorted(names), second[:2000]
    before = {c["data-stream"]: c for c in _attrs(first, "section", "stream")}
    for n in names:  # it updates: more points, a later last window
        assert int(cards[n]["data-points"]) > int(before[n]["data-points"]) >= 3
        assert float(cards[n]["data-last-t"]) > float(before[n]["data-last-t"])
    assert 'id="status"' in second and 'data-ready="true"' in second
    assert int(re.search(r'data-updates="(\d+)"', second).group(1)) >= 2
    # modalities present, and the absent one with its reason
    call = second.split('data-stream="call-7"')[1].split("</section>")[0]
    assert 'class="mod absent" data-modality="audio" data-reason="drop_schedule"' in call
    assert 'class="mod present" data-modality="text"' in call
    assert call.count("<rect") > 10 and "score-line" in call
    assert 'data-key="segments"' in second and "streams open" in second
    print(f"live page screenshot: {shot}")
