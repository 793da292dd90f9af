"""Vietnamese text to speech audio, with espeak-ng, and one rendering per wave and text.

:class:`Speaker` runs ``espeak-ng -v vi`` (Debian's package ``espeak-ng``) as a subprocess: the
text, rewritten by :func:`adapters.loudspeaker.normalise.normalise`, on its standard input, the
audio on its standard output, within ``[loudspeaker] speech.timeout`` seconds (then the process
is killed). espeak-ng writes a WAV whose header cannot say the length (it streams); the audio
is given back as a complete WAV file, as espeak-ng makes it: PCM, 16-bit, mono, 22,050 Hz (a
minute of speech is about 2.6 MB). docs/decisions.md says why espeak-ng and why WAV.

:class:`Renderings` keeps the audio of the last waves' texts: every system of one district gets
the same words, so a wave is rendered once per text, not once per system, also when batches
run at the same time (they wait for the one rendering under way).
"""

from __future__ import annotations

import asyncio
import io
import os
import shutil
import struct
import wave
from collections import OrderedDict

import msgspec

from adapters import metrics
from adapters.loudspeaker.config import Speech
from adapters.loudspeaker.normalise import normalise
from dispatcher.domain.errors import ChannelError

#: The audio's format: what espeak-ng makes, kept as it is.
SAMPLE_WIDTH = 2  # bytes: 16-bit PCM
CHANNELS = 1
KEEP = 16  # renderings kept (a wave has at most one per district and the province's)
ERROR_CHARS = 200  # of espeak-ng's error output quoted in a reason


class Audio(msgspec.Struct, frozen=True):
    """A rendered bulletin: a complete WAV file and how long it plays."""

    wav: bytes
    duration_ms: int
    sample_rate: int


class SpeechFailed(ChannelError):
    """The text could not be rendered. ``installed`` is False when the program cannot be run at
    all (not installed, not executable): no bulletin can go until an operator installs it."""

    def __init__(self, message: str, *, installed: bool = True) -> None:
        super().__init__(message)
        self.installed = installed


def find(binary: str) -> str | None:
    """The path of the speech program, or None when it is not installed."""
    if os.sep in binary:
        return binary if os.access(binary, os.X_OK) else None
    return shutil.which(binary)


def wav_of(stream: bytes) -> Audio:
    """A complete WAV file from espeak-ng's streamed one (its sizes say 0x7ffff000: unknown)."""
    if len(stream) < 12 or stream[:4] != b"RIFF" or stream[8:12] != b"WAVE":
        raise SpeechFailed("speech: the program's output is not a WAV file")
    pos, rate, data = 12, 0, b""
    while pos + 8 <= len(stream):
        kind, size = stream[pos:pos + 4], struct.unpack_from("<I", stream, pos + 4)[0]
        body = pos + 8
        if kind == b"fmt ":
            fmt, channels, rate, _, _, bits = struct.unpack_from("<HHIIHH", stream, body)
            if fmt != 1 or channels != CHANNELS or bits != 8 * SAMPLE_WIDTH or not rate:
                raise SpeechFailed(f"speech: unexpected audio format {fmt}, {channels} "
                                   f"channel(s), {bits} bits, {rate} Hz")
        elif kind == b"data":
            data = stream[body:body + min(size, len(stream) - body)]
            break
        pos = body + size + (size & 1)
    if not rate:
        raise SpeechFailed("speech: the program's WAV has no format chunk")
    data = data[:len(data) - len(data) % SAMPLE_WIDTH]
    out = io.BytesIO()
    with wave.open(out, "wb") as file:
        file.setnchannels(CHANNELS)
        file.setsampwidth(SAMPLE_WIDTH)
        file.setframerate(rate)
        file.writeframes(data)
    frames = len(data) // SAMPLE_WIDTH
    return Audio(out.getvalue(), frames * 1000 // rate, rate)


class Speaker:
    """Renders text with espeak-ng (see the module's documentation)."""

    def __init__(self, config: Speech) -> None:
        self.config = config
        self.renders = 0  # renderings made (each one a run of the program)
        self.seconds = 0.0  # time spent rendering

    def command(self) -> list[str]:
        c = self.config
        # -b 1: the input is UTF-8 whatever the locale; --stdout: the WAV on standard output
        return [c.binary, "-b", "1", "-v", c.voice, "-s", str(c.rate), "-p", str(c.pitch),
                "--stdout"]

    async def render(self, text: str) -> Audio:
        """The audio of ``text`` as it is said (:func:`normalise`). Raises
        :class:`SpeechFailed` when the program is missing, fails or takes too long."""
        said = normalise(text)
        if not said:
            raise SpeechFailed("speech: nothing to read (the text is empty)")
        loop = asyncio.get_running_loop()
        started = loop.time()
        args = self.command()
        try:
            process = await asyncio.create_subprocess_exec(
                *args, stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.PIPE)
        except OSError as exc:
            raise SpeechFailed(f"speech: cannot run {args[0]}: {exc.strerror or exc} (install "
                               "the Debian package espeak-ng)", installed=False) from None
        try:
            async with asyncio.timeout(self.config.timeout):
                out, err = await process.communicate(said.encode())
        except TimeoutError:
            raise SpeechFailed(f"speech: {args[0]} did not finish in "
                               f"{self.config.timeout:g} s") from None
        finally:
            if process.returncode is None:  # timed out or cancelled: never left running
                process.kill()
                await process.wait()
        took = loop.time() - started
        self.renders += 1
        self.seconds += took
        metrics.LOUDSPEAKER_SPEECH_SECONDS.observe(took)
        if process.returncode != 0:
            why = err.decode(errors="replace").strip()[:ERROR_CHARS] or "no message"
            raise SpeechFailed(f"speech: {args[0]} exited with status {process.returncode}: "
                               f"{why}")
        audio = wav_of(out)
        if audio.duration_ms <= 0:
            raise SpeechFailed(f"speech: {args[0]} made no audio for the text")
        return audio


class Renderings:
    """The audio of the last :data:`KEEP` (wave, text) pairs; a pair being rendered is
    awaited by whoever else needs it, never rendered twice."""

    def __init__(self, speaker: Speaker, keep: int = KEEP) -> None:
        self.speaker = speaker
        self.keep = keep
        self.hits = 0  # audio given without rendering
        self._audio: OrderedDict[tuple[str, str], asyncio.Future[Audio]] = OrderedDict()

    async def audio(self, wave_id: str, text: str) -> Audio:
        key = (wave_id, text)
        found = self._audio.get(key)
        if found is not None:
            self._audio.move_to_end(key)
            self.hits += 1
            return await asyncio.shield(found)
        future: asyncio.Future[Audio] = asyncio.get_running_loop().create_future()
        self._audio[key] = future
        while len(self._audio) > self.keep:
            self._audio.popitem(last=False)
        try:
            audio = await self.speaker.render(text)
        except BaseException as exc:
            # a failure is not kept: the next try renders again; whoever waits for this one
            # gets the error (a cancelled rendering: one they may try again)
            if self._audio.get(key) is future:
                del self._audio[key]
            future.set_exception(exc if isinstance(exc, Exception) else
                                 SpeechFailed("speech: the rendering was cancelled"))
            future.exception()  # retrieved here: no "never retrieved" warning without waiters
            raise
        future.set_result(audio)
        return audio
