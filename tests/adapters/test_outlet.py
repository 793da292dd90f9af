"""What the outlet channels share: the back-off of a target, and a simulator stopped (its peer
down) that starts again on its port."""

from __future__ import annotations

import pytest

from adapters.facebook.simulator import FacebookSim
from adapters.http.client import HttpClient
from adapters.http.proxy import Proxies
from adapters.outlet import backoff


@pytest.mark.parametrize(("last", "asked", "least", "expected"), [
    (None, None, 0.0, 60.0),  # the first pause
    (60.0, None, 0.0, 120.0),  # doubling while it lasts
    (2000.0, None, 0.0, 3600.0),  # ... up to the most
    (None, 5.0, 0.0, 5.0),  # what the peer asked, whatever the last
    (960.0, 5.0, 0.0, 5.0),
    (None, 0.0, 0.0, 0.0),  # Retry-After: 0 is taken at its word
    (None, 0.0, 1.0, 1.0),  # ... unless the channel waits at least a second
    (None, 9000.0, 1.0, 3600.0),  # a Retry-After past the most is cut to it
])
def test_a_back_off_doubles_from_its_first_pause_or_takes_what_the_peer_asked(
        last: float | None, asked: float | None, least: float, expected: float) -> None:
    assert backoff(last, 60.0, 3600.0, asked=asked, least=least) == expected


async def test_a_simulator_stopped_starts_again_on_its_port() -> None:
    sim = FacebookSim()
    client = HttpClient(1, 2.0, proxies=Proxies.configured("direct", ""))
    try:
        await sim.start()
        port = sim.port
        stats = client.url(f"{sim.url}/sim/stats")
        assert (await client.request("GET", stats, b"", {})).status == 200
        await sim.stop()
        await sim.start(port=port)
        assert sim.port == port
        answer = await client.request("GET", client.url(f"{sim.url}/sim/stats"), b"", {})
        assert answer.status == 200 and b'"requests":0' in answer.body
    finally:
        await client.aclose()
        await sim.stop()
