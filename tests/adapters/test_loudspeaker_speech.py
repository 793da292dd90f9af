"""The loudspeaker channel's speech: Vietnamese text with diacritics rendered by espeak-ng to a
valid WAV of a plausible length, what it reads badly rewritten by the normalisation table, one
rendering per wave and text, and a missing or slow program answered as such."""

from __future__ import annotations

import asyncio
import io
import shutil
import stat
import wave
from pathlib import Path

import pytest

from adapters.loudspeaker.config import Speech
from adapters.loudspeaker.normalise import RULES, digits, normalise
from adapters.loudspeaker.simulator import MS_PER_CHAR
from adapters.loudspeaker.speech import Renderings, Speaker, SpeechFailed, wav_of

needs_espeak = pytest.mark.skipif(
    shutil.which("espeak-ng") is None,
    reason="espeak-ng is not installed (make test installs the Debian package espeak-ng)")

BULLETIN = ("Bản tin phòng, chống dịch Covid-19 ngày 07/12/2021: thị xã Đông Triều ghi nhận "
            "thêm 12 ca mắc mới, tổng số 1.234 ca. Người dân đeo khẩu trang, rửa tay thường "
            "xuyên; khi có sốt, ho, khó thở, gọi ngay trạm y tế xã hoặc đường dây nóng "
            "1900 9095.")


@pytest.mark.parametrize(("written", "said"), [
    ("gọi 1900 9095", "gọi một chín không không, chín không chín năm"),
    ("gọi 0912 345 678 hoặc 0912345678",
     "gọi không chín một hai, ba bốn năm, sáu bảy tám hoặc không chín một hai, ba bốn năm, "
     "sáu bảy tám"),
    ("gọi 0203.3825.555", "gọi không hai không ba, ba tám hai năm, năm năm năm"),
    ("dịch Covid-19 và COVID 19", "dịch Cô vít mười chín và Cô vít mười chín"),
    ("ngày 07/12/2021, ngày 7/12", "ngày 7 tháng 12 năm 2021, ngày 7 tháng 12"),
    ("lúc 06:30, 17h và 6h30", "lúc 6 giờ 30, 17 giờ và 6 giờ 30"),
    ("02-04 lần/ngày", "2 đến 4 lần mỗi ngày"),
    ("UBND xã, TP. Hạ Long, TX Đông Triều, theo BCĐ. Hết",
     "Ủy ban nhân dân xã, thành phố Hạ Long, thị xã Đông Triều, theo Ban Chỉ đạo. Hết"),
    ("* Lưu ý #1", "Lưu ý 1"),
])
def test_the_normalisation_table_rewrites_what_speech_reads_badly(written: str,
                                                                  said: str) -> None:
    assert normalise(written) == said


@pytest.mark.parametrize("kept", [
    "tổng số 1.234 ca, 1.234.567 liều, 12,5%",  # espeak-ng reads these as quantities already
    "năm 2021 có 150 ca",
    "số 115",
    "Người dân đeo khẩu trang.",
])
def test_quantities_and_plain_words_are_left_to_the_voice(kept: str) -> None:
    assert normalise(kept) == kept


def test_a_number_in_one_piece_is_said_in_groups() -> None:
    assert digits("19009095") == "một chín không không, chín không chín năm"
    assert digits("0912345678") == "không chín một hai, ba bốn năm, sáu bảy tám"
    assert len(RULES) >= 8 and all(len(rule) == 3 for rule in RULES)


def wav_info(data: bytes) -> tuple[int, int, int, int]:
    with wave.open(io.BytesIO(data), "rb") as file:
        return file.getnchannels(), file.getsampwidth(), file.getframerate(), file.getnframes()


@needs_espeak
async def test_vietnamese_with_diacritics_renders_to_a_valid_wav_of_plausible_length() -> None:
    speaker = Speaker(Speech())
    audio = await speaker.render(BULLETIN)
    channels, width, rate, frames = wav_info(audio.wav)
    assert (channels, width) == (1, 2) and rate == audio.sample_rate > 8000
    assert audio.duration_ms == frames * 1000 // rate
    chars = len("".join(BULLETIN.split()))
    low, high = MS_PER_CHAR
    assert low * chars <= audio.duration_ms <= high * chars
    assert 10_000 < audio.duration_ms < 60_000  # some 200 characters: tens of seconds


@needs_espeak
async def test_a_slower_rate_reads_longer() -> None:
    slow = await Speaker(Speech(rate=100)).render(BULLETIN)
    fast = await Speaker(Speech(rate=300)).render(BULLETIN)
    assert slow.duration_ms > 2 * fast.duration_ms


@needs_espeak
async def test_one_rendering_per_wave_and_text_even_when_asked_at_once() -> None:
    speaker = Speaker(Speech())
    renderings = Renderings(speaker, keep=2)
    first = await asyncio.gather(*(renderings.audio("w-1", BULLETIN) for _ in range(5)))
    assert speaker.renders == 1 and renderings.hits == 4
    assert len({a.wav for a in first}) == 1
    await renderings.audio("w-1", "Xin chào Quảng Ninh")
    await renderings.audio("w-2", BULLETIN)  # another wave: its own rendering
    assert speaker.renders == 3
    await renderings.audio("w-1", BULLETIN)  # pushed out by the two since (keep=2)
    assert speaker.renders == 4


async def test_a_missing_program_says_so_and_installs_nothing(tmp_path: Path) -> None:
    speaker = Speaker(Speech(binary=str(tmp_path / "espeak-ng")))
    with pytest.raises(SpeechFailed) as failed:
        await speaker.render("Xin chào")
    assert not failed.value.installed and failed.value.retryable
    assert "espeak-ng" in str(failed.value)


async def test_a_program_that_hangs_is_killed_after_the_timeout(tmp_path: Path) -> None:
    program = tmp_path / "hangs"
    program.write_text("#!/bin/sh\nexec sleep 30\n")
    program.chmod(program.stat().st_mode | stat.S_IXUSR)
    speaker = Speaker(Speech(binary=str(program), timeout=0.3))
    with pytest.raises(SpeechFailed, match=r"did not finish in 0.3 s") as failed:
        await speaker.render("Xin chào")
    assert failed.value.installed


async def test_a_program_that_fails_is_quoted(tmp_path: Path) -> None:
    program = tmp_path / "fails"
    program.write_text("#!/bin/sh\necho 'voice vi not found' >&2\nexit 1\n")
    program.chmod(program.stat().st_mode | stat.S_IXUSR)
    with pytest.raises(SpeechFailed, match=r"exited with status 1: voice vi not found"):
        await Speaker(Speech(binary=str(program))).render("Xin chào")


def test_a_streamed_wav_gets_its_real_length() -> None:
    frames = b"\x01\x00" * 22050  # one second at 22,050 Hz
    header = (b"RIFF\x24\xf0\xff\x7fWAVEfmt \x10\x00\x00\x00\x01\x00\x01\x00\x22\x56\x00\x00"
              b"\x44\xac\x00\x00\x02\x00\x10\x00data\x00\xf0\xff\x7f")
    audio = wav_of(header + frames + b"\x00")  # an odd byte at the end is dropped
    assert audio.duration_ms == 1000 and wav_info(audio.wav) == (1, 2, 22050, 22050)
    with pytest.raises(SpeechFailed, match="not a WAV"):
        wav_of(b"ID3 an mp3")
