"""`loa worker` as a process: it takes a campaign made elsewhere, sends it, and stops cleanly on
SIGTERM."""

from __future__ import annotations

import asyncio
import datetime as dt
import signal
import sys
from pathlib import Path

from bench import audiencegen, simconfig
from dispatcher.domain.audience import Validator
from dispatcher.domain.model import CampaignState, Channel, Priority
from dispatcher.domain.msisdn import Numbering
from dispatcher.domain.province import Province
from dispatcher.engine.campaigns import Campaigns, wave_id
from dispatcher.engine.importer import import_audience
from dispatcher.engine.process import wave_progress
from dispatcher.service.settings import Settings
from dispatcher.store import RedisStore


async def test_a_worker_process_sends_a_campaign_and_stops_on_sigterm(
        redis_url: str, tmp_path: Path, numbering: Numbering, province: Province) -> None:
    store = RedisStore(redis_url)
    path = tmp_path / "audience.csv"
    audiencegen.generate(path, 1000, seed=2, numbering=numbering, province=province)
    await import_audience(path, store, Validator(numbering, province), chunk_size=128)
    campaigns = Campaigns(store, Settings(), province)
    campaign = await campaigns.create(title="Khẩn", channels=[Channel.SMS],
                                      texts={Channel.SMS: "Deo khau trang"}, created_by="alice",
                                      now=dt.datetime.now(dt.UTC), priority=Priority.URGENT)
    config = tmp_path / "loa.toml"
    config.write_text(simconfig.simulate_table(*Channel), encoding="utf-8")
    worker = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "dispatcher.service.cli", "worker", "--redis", redis_url,
        "--config", str(config),
        "--name", "w-test", stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE)
    try:
        async def finished() -> None:
            while (await campaigns.get(campaign.id)).state is not CampaignState.COMPLETED:
                await asyncio.sleep(0.1)
        await asyncio.wait_for(finished(), 60)
        wave = await store.waves.get(wave_id(campaign.id, Channel.SMS))
        assert wave is not None
        progress = await wave_progress(store, wave)
        assert progress.sent == wave.total == 1000
        worker.send_signal(signal.SIGTERM)
        assert await asyncio.wait_for(worker.wait(), 30) == 0
    finally:
        if worker.returncode is None:
            worker.kill()
            await worker.wait()
        await store.aclose()
