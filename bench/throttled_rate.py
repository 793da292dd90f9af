"""A bind with an agreed TPS against the SMSC simulator answering 30% of its submits
ESME_RTHROTTLED, whatever their pace: the rate in force over the second half of the run, the
bind's decreases and the steady share it found, and the submit_sm per second the simulator
counted. Run: ``.venv/bin/python -m bench.throttled_rate`` (results in bench/RESULTS.md)."""

from __future__ import annotations

import asyncio
import time

from adapters.base import Envelope
from adapters.smpp.adapter import LinkConfig, SmppAdapter
from adapters.smpp.simulator import Smsc, SmscConfig
from dispatcher.domain.model import Channel

RUNS = ((15, 20.0), (200, 10.0), (2000, 10.0))  # (tps, seconds)
SHARE = 0.3


async def run(tps: float, seconds: float) -> str:
    smsc = Smsc(SmscConfig(error_ratio=SHARE, error_status=0x58, seed=3))
    await smsc.start()
    adapter = SmppAdapter({"default": LinkConfig(host="127.0.0.1", port=smsc.port,
                                                 system_id="loa", password="pw", window=64,
                                                 tps=tps)})
    try:
        await adapter.links["default"].bound()
        rate = adapter.links["default"].sessions[0].rate
        samples: list[float] = []

        async def sample() -> None:
            while True:
                samples.append(rate.rate)
                await asyncio.sleep(0.1)

        end = time.monotonic() + seconds
        sent = 0
        async with asyncio.TaskGroup() as tasks:
            sampler = tasks.create_task(sample())
            while time.monotonic() < end:
                addrs = [f"8491{i:07d}" for i in range(sent, sent + 200)]
                sent += 200
                await adapter.send(Envelope(wave="w", channel=Channel.SMS, text="x",
                                            addrs=addrs, route="sms.default"))
            sampler.cancel()
    finally:
        await adapter.aclose()
        await smsc.stop()
    stats = smsc.stats
    late = samples[len(samples) // 2:]
    at_smsc = (stats.submits - 1) / (stats.last_submit_at - stats.first_submit_at)
    return (f"| {tps:g} | {seconds:g} s | {min(late):.1f} | {sum(late) / len(late):.1f} | "
            f"{rate.decreases} | {rate.steady:.2f} | {stats.submits:,} ({at_smsc:.1f}/s) | "
            f"{stats.errors_injected:,} |")


def main() -> None:
    print("| tps | run | rate in force, 2nd half: min | mean | decreases | steady share "
          "| submit_sm at the SMSC | answered 0x58 |")
    print("|---|---|---|---|---|---|---|---|")
    for tps, seconds in RUNS:
        print(asyncio.run(run(tps, seconds)))


if __name__ == "__main__":
    main()
