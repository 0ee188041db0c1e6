"""Open audio files and read them block by block.

Two back ends:

* **libsndfile** (through ``soundfile``) for everything it reads: WAV (PCM 8/16/24/32, u-law, A-law, float),
  FLAC, Ogg/Vorbis, Opus, MP3, AIFF, CAF, W64/RF64 and more.
* **ffmpeg** for other containers (m4a/aac, wma, webm, mp4, …). The file is probed once with ``ffprobe`` for
  the native sample rate and channel count of its first audio stream; ``ffmpeg`` then decodes that stream at
  its native rate and channel count to raw float32 (``-f f32le``) on a pipe, which is read in blocks. The
  frame count of such a source is unknown until it has been read (``frames is None``).

Which back end is used: a file whose extension libsndfile handles (:data:`SOUNDFILE_EXTENSIONS`) is read by
libsndfile only, and if libsndfile cannot read it the file is reported as corrupt — a broken ``.wav`` never
gets a second, guessing decoder. Any other file is tried with libsndfile first (it detects formats by
content), then with ffmpeg.

Every block is checked for NaN/Inf as it is read, so a bad sample is reported without holding the file.

**Bounded cost.** What a header declares is checked against :mod:`audioclf.limits` before anything is decoded:
the sample rate (``min_sample_rate`` .. ``sample_rate``: a 1 Hz header would make resampling expand every sample
thousands of times), the channel count (``channels``) and the length (``audio_seconds``; for sources whose length
is unknown until decoded, checked while decoding).

**Truncation.** A cut-off transfer must not pass for a shorter recording: a WAV whose ``data`` chunk promises more
bytes than the file holds, an Ogg file (Vorbis, Opus, FLAC in Ogg) whose last page is cut off or is not an
end-of-stream page, and an MP3 whose last frame is cut mid-way (or that holds fewer frames than its Xing/Info
header counts) are errors before decoding starts; a FLAC stream that breaks off is an error when the reader gets
there. libsndfile's MP3 decoder (mpg123) prints its own warnings about damaged MP3 frames on stderr and carries on.

File names need not be UTF-8: paths are handed to libsndfile as the bytes they are (``os.fsencode``).
All failures a user can cause raise :class:`~audioclf.errors.AudioError` with a one-line message that starts
with the file path.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import Any, Iterator, Protocol

import numpy as np
import soundfile as sf

from audioclf.errors import AudioError
from audioclf.limits import LIMITS, exceeds

__all__ = [
    "AUDIO_EXTENSIONS",
    "FFMPEG_EXTENSIONS",
    "SOUNDFILE_EXTENSIONS",
    "ArraySource",
    "AudioSource",
    "BlockSource",
    "DEFAULT_BLOCK_FRAMES",
    "ffmpeg_available",
    "has_audio_extension",
]

#: Extensions read by libsndfile (lower case, with the dot).
SOUNDFILE_EXTENSIONS: frozenset[str] = frozenset(
    {
        ".wav", ".wave", ".flac", ".ogg", ".oga", ".opus", ".mp3",
        ".aif", ".aiff", ".aifc", ".au", ".snd", ".caf", ".w64", ".rf64",
    }
)
#: Extensions decoded through ffmpeg when it is installed.
FFMPEG_EXTENSIONS: frozenset[str] = frozenset(
    {
        ".m4a", ".m4b", ".aac", ".mp4", ".m4v", ".mov", ".wma", ".asf", ".webm", ".mka",
        ".mkv", ".amr", ".ac3", ".eac3", ".ape", ".wv", ".mpc", ".3gp", ".3g2", ".mp2",
    }
)
#: Every extension a directory scan should pick up (lower case, with the dot).
AUDIO_EXTENSIONS: frozenset[str] = SOUNDFILE_EXTENSIONS | FFMPEG_EXTENSIONS

#: Default number of frames per block: about 4 s at 16 kHz, 1.5 s at 44.1 kHz.
DEFAULT_BLOCK_FRAMES = 65536

_MP3_FRAME = 1152  # samples per MPEG-1 Layer III frame; a multiple of the 576 of MPEG-2/2.5


def has_audio_extension(path: str | os.PathLike[str]) -> bool:
    """True when ``path`` ends in one of :data:`AUDIO_EXTENSIONS`, compared case-insensitively (``.WAV`` counts)."""
    return Path(path).suffix.lower() in AUDIO_EXTENSIONS


def ffmpeg_available() -> bool:
    """True when both ``ffmpeg`` and ``ffprobe`` are on ``PATH``."""
    return shutil.which("ffmpeg") is not None and shutil.which("ffprobe") is not None


def _first_line(text: str) -> str:
    """The last non-empty line of a (possibly multi-line) library message, squeezed to one line."""
    lines = [line.strip() for line in str(text).splitlines() if line.strip()]
    return " ".join(lines[-1].split()) if lines else "unknown error"


def _soundfile_reason(error: Exception, path: Path) -> str:
    """libsndfile's reason without the "Error opening '<path>':" prefix that repeats the path."""
    message = _first_line(str(error))
    for shown in (str(path), os.fsencode(path)):
        prefix = f"Error opening {shown!r}:"
        if message.startswith(prefix):
            message = message[len(prefix):].strip()
    if "does not exist" in message:
        # libsndfile says this for some unrecognisable contents; the path was checked to be a regular file.
        message = "Format not recognised."
    return message


def _check_wav_data_size(path: Path) -> None:
    """Raise :class:`AudioError` when a RIFF/WAVE file's ``data`` chunk promises more bytes than the file holds.

    libsndfile quietly decodes a truncated WAV up to where its data ends; a cut-off transfer must not pass for a
    shorter recording. Streaming writers that leave the size unset (0 or 0xFFFFFFFF) are accepted.
    """
    size = path.stat().st_size
    with open(path, "rb") as handle:
        header = handle.read(12)
        if len(header) < 12 or header[:4] != b"RIFF" or header[8:12] != b"WAVE":
            return  # RF64 / W64 and friends: left to libsndfile
        offset = 12
        while offset + 8 <= size:
            handle.seek(offset)
            chunk = handle.read(8)
            if len(chunk) < 8:
                return
            name, length = chunk[:4], int.from_bytes(chunk[4:], "little")
            if name == b"data":
                if length in (0, 0xFFFFFFFF):
                    return
                available = size - offset - 8
                if length > available:
                    raise AudioError(
                        f"{path}: truncated, the header promises {length} bytes of audio data but the file holds "
                        f"{available}"
                    )
                return
            offset += 8 + length + (length & 1)


def _check_ogg_end(path: Path) -> None:
    """Raise :class:`AudioError` unless the Ogg file ``path`` ends with a whole page (its CRC right) that is an
    end-of-stream page: a cut-off Ogg file ends inside a page or on a page that is not the stream's last."""
    size = path.stat().st_size
    with open(path, "rb") as handle:
        handle.seek(max(0, size - _OGG_TAIL))
        tail = handle.read()
    position = len(tail)
    checked = 0
    while checked < 8:  # a page ends at the end of the file once; hostile data gets a few tries, not thousands
        position = tail.rfind(b"OggS", 0, position)
        if position < 0:
            break
        if _ogg_page_end(tail, position) != len(tail):
            continue
        checked += 1
        page = tail[position:]
        if _ogg_crc(page[:22] + b"\0\0\0\0" + page[26:]) != int.from_bytes(page[22:26], "little"):
            continue
        if not page[5] & 0x04:
            raise AudioError(f"{path}: truncated, the file ends before the Ogg end-of-stream page")
        return
    raise AudioError(f"{path}: truncated, the last Ogg page is cut off (no complete page at the end)")


def _ogg_page_end(data: bytes, position: int) -> int | None:
    """Where the Ogg page whose header starts at ``position`` of ``data`` ends (None: its header is not whole)."""
    if position + 27 > len(data) or data[position + 4] != 0:
        return None
    end_of_table = position + 27 + data[position + 26]
    if end_of_table > len(data):
        return None
    return end_of_table + sum(data[position + 27:end_of_table])


def _ogg_crc_table() -> list[int]:
    table = []
    for byte in range(256):
        value = byte << 24
        for _ in range(8):
            value = ((value << 1) ^ 0x04C11DB7) if value & 0x80000000 else value << 1
        table.append(value & 0xFFFFFFFF)
    return table


_OGG_CRC_TABLE = _ogg_crc_table()
_OGG_TAIL = 27 + 255 + 255 * 255  # the largest Ogg page


def _ogg_crc(data: bytes) -> int:
    """The Ogg page checksum (CRC-32, polynomial 0x04C11DB7, not reflected, initial value 0)."""
    crc = 0
    table = _OGG_CRC_TABLE
    for byte in data:
        crc = ((crc << 8) & 0xFFFFFFFF) ^ table[(crc >> 24) ^ byte]
    return crc


# MPEG audio frame headers: bit rates (kbit/s) by [version is MPEG-1][layer] and index, sample rates by version
_MPEG_BITRATES = {
    (True, 1): (0, 32, 64, 96, 128, 160, 192, 224, 256, 288, 320, 352, 384, 416, 448),
    (True, 2): (0, 32, 48, 56, 64, 80, 96, 112, 128, 160, 192, 224, 256, 320, 384),
    (True, 3): (0, 32, 40, 48, 56, 64, 80, 96, 112, 128, 160, 192, 224, 256, 320),
    (False, 1): (0, 32, 48, 56, 64, 80, 96, 112, 128, 144, 160, 176, 192, 224, 256),
    (False, 2): (0, 8, 16, 24, 32, 40, 48, 56, 64, 80, 96, 112, 128, 144, 160),
    (False, 3): (0, 8, 16, 24, 32, 40, 48, 56, 64, 80, 96, 112, 128, 144, 160),
}
_MPEG_RATES = {3: (44100, 48000, 32000), 2: (22050, 24000, 16000), 0: (11025, 12000, 8000)}


def _mpeg_frame(header: bytes) -> tuple[int, bool, int] | None:
    """``(frame length in bytes, is MPEG-1, channel mode)`` of a 4-byte MPEG audio frame header, None when the
    bytes are not one (or a free-format frame, whose length the header does not tell)."""
    if len(header) < 4 or header[0] != 0xFF or header[1] & 0xE0 != 0xE0:
        return None
    version, layer_bits = (header[1] >> 3) & 3, (header[1] >> 1) & 3
    bitrate_index, rate_index = header[2] >> 4, (header[2] >> 2) & 3
    if version == 1 or layer_bits == 0 or bitrate_index in (0, 15) or rate_index == 3:
        return None
    layer, mpeg1 = 4 - layer_bits, version == 3
    bitrate = _MPEG_BITRATES[(mpeg1, layer)][bitrate_index] * 1000
    rate = _MPEG_RATES[version][rate_index]
    padding = (header[2] >> 1) & 1
    if layer == 1:
        length = (12 * bitrate // rate + padding) * 4
    else:
        length = (144 if mpeg1 or layer == 2 else 72) * bitrate // rate + padding
    return length, mpeg1, header[3] >> 6


def _check_mp3_frames(path: Path) -> None:
    """Raise :class:`AudioError` when the MP3 file ``path`` is cut off: its last frame runs past the end of the
    file, or it holds fewer frames than its Xing/Info header counts. Frames are walked from the first one (after an
    ID3v2 tag) by their headers; trailing tags (ID3v1, APE, Lyrics3) end the walk; anything else the walk cannot
    read (free-format frames, junk between frames) leaves the file to the decoder."""
    import mmap

    size = path.stat().st_size
    if size == 0:
        return
    with open(path, "rb") as handle, mmap.mmap(handle.fileno(), 0, access=mmap.ACCESS_READ) as data:
        position = 0
        if data[:3] == b"ID3" and size >= 10:
            tag_size = sum((byte & 0x7F) << (7 * (3 - k)) for k, byte in enumerate(data[6:10]))  # syncsafe
            position = 10 + tag_size + (10 if data[5] & 0x10 else 0)
        frames = 0
        counted = None
        while position < size:
            frame = _mpeg_frame(data[position:position + 4])
            if frame is None:
                return  # trailing tags, junk or free format: nothing more to tell here
            length, mpeg1, mode = frame
            if position + length > size:
                raise AudioError(f"{path}: truncated, the last MP3 frame is cut off ({size - position} of its "
                                 f"{length} bytes)")
            if frames == 0:
                counted = _xing_frame_count(data[position:position + length], mpeg1, mode)
            frames += 1
            position += length
        if counted is not None and frames - 1 < counted:
            raise AudioError(f"{path}: truncated, its header counts {counted} MP3 frames but the file holds "
                             f"{frames - 1}")


def _xing_frame_count(frame: bytes, mpeg1: bool, mode: int) -> int | None:
    """The frame count of a Xing/Info header in the first MP3 frame (None when there is none)."""
    side_info = (32 if mode != 3 else 17) if mpeg1 else (17 if mode != 3 else 9)
    start = 4 + side_info
    if frame[start:start + 4] not in (b"Xing", b"Info") or len(frame) < start + 12:
        return None
    flags = int.from_bytes(frame[start + 4:start + 8], "big")
    return int.from_bytes(frame[start + 8:start + 12], "big") if flags & 1 else None


def _check_declared(path: Path, sample_rate: int, channels: int, seconds: float | None) -> None:
    """Raise :class:`AudioError` when a header declares a sample rate, a channel count or a length beyond
    :data:`audioclf.limits.LIMITS`."""
    problem = exceeds("min_sample_rate", sample_rate) or exceeds("sample_rate", sample_rate)
    if problem:
        raise AudioError(f"{path}: the sample rate {sample_rate} Hz {problem}")
    problem = exceeds("channels", channels)
    if problem:
        raise AudioError(f"{path}: {channels} channels: the count {problem}")
    problem = None if seconds is None else exceeds("audio_seconds", seconds)
    if problem:
        raise AudioError(f"{path}: {seconds:.0f} s of audio: the length {problem}")


class AudioSource:
    """An opened (probed) audio file that can be read in blocks any number of times.

    Attributes:
        path: the file.
        sample_rate: native sample rate in Hz.
        channels: number of channels.
        frames: number of frames (samples per channel) stated by the header: exact for PCM/FLAC/Vorbis/Opus,
            an estimate for MP3 (the decoded count can differ), ``None`` when unknown before decoding (ffmpeg).
        format: short description, e.g. ``"WAV PCM_16"``, ``"OGG VORBIS"``, ``"ffmpeg aac"``.
        backend: ``"soundfile"`` or ``"ffmpeg"``.

    Opening probes the file and raises :class:`AudioError` for a missing path, a directory, an empty file,
    an unreadable/corrupt file, an unsupported format (naming ffmpeg as the fix when it is missing) and a
    file with zero frames. Errors in the audio data itself (truncation found while decoding, NaN/Inf
    samples) are raised by :meth:`blocks` when the reader reaches them.
    """

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        self.sample_rate: int
        self.channels: int
        self.frames: int | None
        self.format: str
        self.backend: str
        self._stated_duration: float | None = None
        self._check_path()
        extension = self.path.suffix.lower()
        try:
            info = sf.info(os.fsencode(self.path))
        except Exception as error:  # libsndfile raises LibsndfileError/RuntimeError/TypeError for bad input
            reason = _soundfile_reason(error, self.path)
            if extension in SOUNDFILE_EXTENSIONS:
                message = f"{self.path}: cannot decode {extension} file, it is corrupt or not audio ({reason})"
                raise AudioError(message) from None
            self._open_with_ffmpeg(extension or "(no extension)", reason)
        else:
            self.backend = "soundfile"
            self.sample_rate = int(info.samplerate)
            self.channels = int(info.channels)
            self.frames = int(info.frames)
            self.format = f"{info.format} {info.subtype}"
            if self.sample_rate <= 0 or self.channels <= 0:
                raise AudioError(f"{self.path}: invalid header ({self.sample_rate} Hz, {self.channels} channels)")
            if self.frames <= 0:
                raise AudioError(f"{self.path}: no audio frames (the file holds a header but no samples)")
            _check_declared(self.path, self.sample_rate, self.channels, self.frames / self.sample_rate)
            completeness = _COMPLETENESS_CHECKS.get(info.format)
            if completeness is not None:
                completeness(self.path)

    def __repr__(self) -> str:
        return (
            f"AudioSource({str(self.path)!r}, sample_rate={self.sample_rate}, channels={self.channels}, "
            f"frames={self.frames}, format={self.format!r})"
        )

    @property
    def duration(self) -> float | None:
        """Length in seconds (``frames / sample_rate``), or the container's stated duration for ffmpeg sources
        (``None`` when the container states none)."""
        if self.frames is not None:
            return self.frames / self.sample_rate
        return self._stated_duration

    # ----------------------------------------------------------------------------------------------- opening
    def _check_path(self) -> None:
        path = self.path
        try:
            os.stat(path)
        except FileNotFoundError:
            raise AudioError(f"{path}: no such file") from None
        except OSError as error:  # a symbolic-link loop, a path through a file, no permission
            raise AudioError(f"{path}: cannot open ({error.strerror or error})") from None
        if path.is_dir():
            raise AudioError(f"{path}: is a directory, not an audio file")
        if not path.is_file():
            raise AudioError(f"{path}: not a regular file")
        try:
            size = path.stat().st_size
            with open(path, "rb"):
                pass
        except OSError as error:
            raise AudioError(f"{path}: cannot open ({error.strerror or error})") from None
        if size == 0:
            raise AudioError(f"{path}: empty file (0 bytes)")

    def _open_with_ffmpeg(self, extension: str, soundfile_reason: str) -> None:
        if not ffmpeg_available():
            if extension in FFMPEG_EXTENSIONS:
                raise AudioError(
                    f"{self.path}: {extension} files need ffmpeg, which is not installed; "
                    "install ffmpeg (e.g. apt-get install ffmpeg) and make sure ffmpeg and ffprobe are on PATH"
                )
            raise AudioError(
                f"{self.path}: unsupported audio format {extension} ({soundfile_reason}); "
                "install ffmpeg to decode more formats"
            )
        probe = _ffprobe(self.path)
        streams = probe.get("streams") or []
        if not streams:
            raise AudioError(f"{self.path}: not a recognised audio file (no audio stream found by ffprobe)")
        stream = streams[0]
        try:
            self.sample_rate = int(stream.get("sample_rate") or 0)
            self.channels = int(stream.get("channels") or 0)
        except (TypeError, ValueError):
            self.sample_rate = self.channels = 0
        if self.sample_rate <= 0 or self.channels <= 0:
            raise AudioError(f"{self.path}: ffprobe found no usable sample rate/channel count in the audio stream")
        _check_declared(self.path, self.sample_rate, self.channels, None)
        self.backend = "ffmpeg"
        self.frames = None
        self.format = f"ffmpeg {stream.get('codec_name', 'unknown')}"
        for value in (stream.get("duration"), (probe.get("format") or {}).get("duration")):
            try:
                self._stated_duration = float(value)
                break
            except (TypeError, ValueError):
                continue

    # ----------------------------------------------------------------------------------------------- reading
    def blocks(self, block_frames: int = DEFAULT_BLOCK_FRAMES) -> Iterator[np.ndarray]:
        """Yield the audio as consecutive blocks.

        Each block is a C-contiguous ``float32`` array of shape ``[frames, channels]`` with
        ``1 <= frames <= block_frames`` (every block but the last has exactly ``block_frames`` frames for
        libsndfile sources; ffmpeg sources may deliver shorter blocks). Samples are in ``[-1, 1]`` for
        integer formats. At most one block is held in memory at a time.

        Raises :class:`AudioError` when decoding fails midway, when a block contains NaN or Inf, and when the
        stream turns out to hold zero frames.
        """
        if block_frames <= 0:
            raise ValueError(f"block_frames must be positive, got {block_frames}")
        reader = self._soundfile_blocks if self.backend == "soundfile" else self._ffmpeg_blocks
        return _checked_blocks(reader(block_frames), self.path, self.sample_rate)

    def read_all(self) -> np.ndarray:
        """The whole file as one ``float32`` array ``[frames, channels]`` (for short files)."""
        parts = list(self.blocks())
        if len(parts) == 1:
            return parts[0]
        return np.ascontiguousarray(np.concatenate(parts, axis=0))

    def _soundfile_blocks(self, block_frames: int) -> Iterator[np.ndarray]:
        # libsndfile's MP3 decoder returns different samples depending on how reads line up with MPEG frames
        # (1152 samples, 576 for MPEG-2/2.5); reading whole multiples of 1152 gives the same samples as one
        # read of the whole file, so MP3 is read that way and re-cut into blocks of block_frames.
        is_mp3 = self.format.startswith("MP3")
        read_frames = -(-block_frames // _MP3_FRAME) * _MP3_FRAME if is_mp3 else block_frames
        position = 0
        pending: list[np.ndarray] = []
        pending_frames = 0
        try:
            with sf.SoundFile(os.fsencode(self.path)) as handle:
                while True:
                    block = handle.read(read_frames, dtype="float32", always_2d=True)
                    if block.shape[0] == 0:
                        break
                    position += block.shape[0]
                    if not is_mp3:
                        yield block
                        continue
                    pending.append(block)
                    pending_frames += block.shape[0]
                    while pending_frames >= block_frames:
                        merged = np.concatenate(pending, axis=0) if len(pending) > 1 else pending[0]
                        yield np.ascontiguousarray(merged[:block_frames])
                        rest = merged[block_frames:]
                        pending = [rest] if rest.shape[0] else []
                        pending_frames = rest.shape[0]
        except AudioError:
            raise
        except Exception as error:
            seconds = position / self.sample_rate
            reason = _soundfile_reason(error, self.path)
            message = f"{self.path}: decoding failed after {seconds:.3f} s, the file is truncated or corrupt ({reason})"
            raise AudioError(message) from None
        if pending_frames:
            yield np.ascontiguousarray(np.concatenate(pending, axis=0))
        if not is_mp3 and 0 < position < (self.frames or 0):
            raise AudioError(
                f"{self.path}: truncated, the header promises {self.frames} frames but only {position} could be decoded"
            )

    def _ffmpeg_blocks(self, block_frames: int) -> Iterator[np.ndarray]:
        ffmpeg = shutil.which("ffmpeg")
        if ffmpeg is None:
            raise AudioError(f"{self.path}: ffmpeg is no longer on PATH; install ffmpeg to decode this file")
        command = [
            ffmpeg, "-nostdin", "-hide_banner", "-loglevel", "error",
            "-i", str(self.path), "-map", "0:a:0", "-vn", "-sn", "-dn",
            "-ac", str(self.channels), "-ar", str(self.sample_rate),
            "-f", "f32le", "-acodec", "pcm_f32le", "pipe:1",
        ]  # fmt: skip
        frame_bytes = 4 * self.channels
        block_bytes = block_frames * frame_bytes
        with tempfile.TemporaryFile() as stderr:
            process = subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=stderr)
            assert process.stdout is not None
            finished = False
            try:
                pending = b""
                while True:
                    data = process.stdout.read(block_bytes - len(pending))
                    if not data:
                        break
                    pending += data
                    if len(pending) < block_bytes:
                        continue  # a short pipe read; wait for the rest of the block
                    yield _f32le_to_block(pending, self.channels)
                    pending = b""
                usable = len(pending) - len(pending) % frame_bytes
                if usable:
                    yield _f32le_to_block(pending[:usable], self.channels)
                returncode = process.wait()
                finished = True
                if returncode != 0:
                    stderr.seek(0)
                    reason = _first_line(stderr.read().decode("utf-8", "replace"))
                    raise AudioError(f"{self.path}: ffmpeg failed to decode the file ({reason})")
            finally:
                if not finished:  # the consumer stopped early or an error interrupted reading
                    process.kill()
                    process.wait()
                process.stdout.close()


def _f32le_to_block(data: bytes, channels: int) -> np.ndarray:
    """Interleaved little-endian float32 bytes → writable ``float32 [frames, channels]``."""
    return np.frombuffer(data, dtype="<f4").astype(np.float32).reshape(-1, channels)


def _ffprobe(path: Path) -> dict:
    """Run ffprobe on ``path`` and return its JSON (streams: first audio stream; format: duration)."""
    ffprobe = shutil.which("ffprobe")
    if ffprobe is None:
        raise AudioError(f"{path}: ffprobe is not on PATH; install ffmpeg (it provides ffprobe)")
    command = [
        ffprobe, "-v", "error", "-select_streams", "a:0",
        "-show_entries", "stream=codec_name,sample_rate,channels,duration:format=duration",
        "-of", "json", str(path),
    ]  # fmt: skip
    try:
        result = subprocess.run(command, stdin=subprocess.DEVNULL, capture_output=True, timeout=60)
    except subprocess.TimeoutExpired:
        raise AudioError(f"{path}: ffprobe timed out reading the file") from None
    if result.returncode != 0:
        reason = _first_line(result.stderr.decode("utf-8", "replace"))
        raise AudioError(f"{path}: not a recognised audio file ({reason})")
    try:
        return json.loads(result.stdout.decode("utf-8", "replace") or "{}")
    except json.JSONDecodeError:
        raise AudioError(f"{path}: ffprobe returned unreadable output") from None


def _checked_blocks(blocks: Iterator[np.ndarray], path: Any, sample_rate: int) -> Iterator[np.ndarray]:
    """Pass ``float32 [frames, channels]`` blocks through, raising :class:`AudioError` at the first NaN/Inf sample
    and when there are no frames at all. Closing this generator closes ``blocks`` (an ffmpeg process stops)."""
    position = 0
    longest = LIMITS["audio_seconds"] * sample_rate
    try:
        for block in blocks:
            if not np.isfinite(block).all():
                bad = int(np.argmax(~np.isfinite(block).all(axis=1)))
                seconds = (position + bad) / sample_rate
                raise AudioError(f"{path}: contains NaN or infinite samples (first at {seconds:.3f} s)")
            position += block.shape[0]
            if position > longest:
                raise AudioError(f"{path}: more than {longest / sample_rate:.0f} s of audio: the length "
                                 f"{exceeds('audio_seconds', position / sample_rate)}")
            yield block
    finally:
        blocks.close()  # type: ignore[attr-defined]
    if position == 0:
        raise AudioError(f"{path}: no audio frames could be decoded")


#: libsndfile major format -> the check that the file is whole
_COMPLETENESS_CHECKS = {"WAV": _check_wav_data_size, "OGG": _check_ogg_end, "MP3": _check_mp3_frames}


class BlockSource(Protocol):
    """What the audio path reads from: a file (:class:`AudioSource`) or an array in memory (:class:`ArraySource`).

    ``path`` names the source in error messages; ``blocks()`` yields ``float32 [frames, channels]`` blocks at
    ``sample_rate``."""

    path: Any
    sample_rate: int
    channels: int

    def blocks(self, block_frames: int = DEFAULT_BLOCK_FRAMES) -> Iterator[np.ndarray]: ...


class ArraySource:
    """Audio already in memory, read like a file: ``samples`` ``[frames]`` (mono) or ``[frames, channels]`` (the
    layout ``soundfile`` returns) at ``sample_rate`` Hz.

    Any real dtype is accepted and converted to float32 without scaling (as ``transformers``' feature extractors
    do); torch tensors are converted to numpy. ``name`` labels the source in error messages. Raises
    :class:`AudioError` for a rate that is not a positive integer, an empty array, a shape other than 1-D/2-D,
    a 2-D array with more channels than frames (probably ``[channels, frames]``: transpose it) and non-real
    dtypes; NaN/Inf samples are reported by :meth:`blocks`, as for files.
    """

    backend = "memory"

    def __init__(self, samples: Any, sample_rate: Any, name: str = "array") -> None:
        self.path = name
        if isinstance(sample_rate, bool) or not isinstance(sample_rate, (int, np.integer)) or sample_rate <= 0:
            raise AudioError(f"{name}: sampling rate must be a positive integer (Hz), got {sample_rate!r}")
        if hasattr(samples, "detach") and hasattr(samples, "cpu"):  # a torch tensor, without importing torch
            samples = samples.detach().cpu().numpy()
        array = np.asarray(samples)
        if array.dtype.kind not in "fiu":
            raise AudioError(f"{name}: audio samples must be real numbers, got an array of {array.dtype}")
        if array.ndim == 1:
            array = array[:, None]
        if array.ndim != 2:
            raise AudioError(f"{name}: audio must be [frames] or [frames, channels], got shape {tuple(array.shape)}")
        if array.shape[0] == 0 or array.shape[1] == 0:
            raise AudioError(f"{name}: no audio frames (shape {tuple(array.shape)})")
        if array.shape[1] > array.shape[0]:
            raise AudioError(f"{name}: a 2-D array is [frames, channels], but shape {tuple(array.shape)} has more "
                             "channels than frames; transpose it")
        self.samples = array
        self.sample_rate = int(sample_rate)
        self.channels = int(array.shape[1])
        self.frames = int(array.shape[0])
        self.format = f"array {array.dtype}"

    def __repr__(self) -> str:
        return f"ArraySource({self.path!r}, sample_rate={self.sample_rate}, channels={self.channels}, frames={self.frames})"

    def blocks(self, block_frames: int = DEFAULT_BLOCK_FRAMES) -> Iterator[np.ndarray]:
        """The samples as C-contiguous ``float32 [frames, channels]`` copies of at most ``block_frames`` frames."""
        if block_frames <= 0:
            raise ValueError(f"block_frames must be positive, got {block_frames}")
        pieces = (np.array(self.samples[start:start + block_frames], dtype=np.float32, order="C")
                  for start in range(0, self.frames, block_frames))
        return _checked_blocks(pieces, self.path, self.sample_rate)
