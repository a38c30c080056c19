"""Voice activity: how likely one short window of 16 kHz audio is speech.

The Silero VAD used is the ONNX file that faster-whisper ships (faster_whisper/assets), run
with onnxruntime, which faster-whisper already depends on. The `silero-vad` package from PyPI
would bring the same network but depends on torch unconditionally (hundreds of MB) for a
file of 1.2 MB. faster-whisper's own `get_speech_timestamps` works on whole recordings, so
the network is driven here one window at a time, carrying its state, for live audio.

`EnergyVad` is a level threshold: deterministic for tests with tones, and a fallback that
needs no model at all.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from majlis.media.captions.model import ModelNotFound
from majlis.media.captions.resample import Pcm

__all__ = ["SILERO_WINDOW", "EnergyVad", "SileroModel", "SileroVad", "VoiceActivity"]

SILERO_WINDOW = 512  # samples at 16 kHz (32 ms): what the v6 network is trained on
_CONTEXT = 64  # samples of the previous window the network sees in front of each window
_STATE_SHAPE = (1, 1, 128)
_ASSET = "silero_vad_v6.onnx"  # faster-whisper >= 1.2; older releases ship other files


class VoiceActivity(Protocol):
    """One stream's detector; its state carries over from one window to the next."""

    @property
    def window(self) -> int:
        """Samples at 16 kHz per call of `probability`."""
        ...

    def probability(self, window: Pcm) -> float:
        """How likely (0 to 1) the next `window` samples of the stream are speech."""
        ...

    def reset(self) -> None:
        """Forget the stream so far."""
        ...


class SileroModel:
    """The Silero network, loaded once and shared by every stream's `SileroVad`."""

    def __init__(self, path: Path | None = None, *, threads: int = 1) -> None:
        try:
            import onnxruntime  # type: ignore[import-untyped]
        except ImportError as exc:  # an optional dependency: captions are opt-in
            raise ModelNotFound(
                "Silero VAD needs onnxruntime: pip install faster-whisper (it depends on it)"
            ) from exc
        path = path if path is not None else bundled_silero_path()
        options = onnxruntime.SessionOptions()
        # One small network per 32 ms per speaker: threads would cost more than they save,
        # and the machine's cores belong to the mixer and to Whisper.
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        options.enable_cpu_mem_arena = False
        options.log_severity_level = 4
        self._session: Any = onnxruntime.InferenceSession(
            str(path), sess_options=options, providers=["CPUExecutionProvider"]
        )

    def stream(self) -> SileroVad:
        """A detector for one more stream."""
        return SileroVad(self)

    def run(self, framed: Pcm, h: Pcm, c: Pcm) -> tuple[float, Pcm, Pcm]:
        """One window behind its context, and a stream's state: the probability, the new state."""
        # A session may be run from several threads at once, so streams can share the model.
        feed = {"input": framed[np.newaxis, :], "h": h, "c": c}
        probability, h, c = self._session.run(None, feed)
        return float(probability.reshape(-1)[0]), h, c


def bundled_silero_path() -> Path:
    """faster-whisper's copy of the Silero VAD network, found without importing faster-whisper."""
    spec = importlib.util.find_spec("faster_whisper")
    locations = [] if spec is None else list(spec.submodule_search_locations or [])
    for location in locations:
        path = Path(location) / "assets" / _ASSET
        if path.is_file():
            return path
    raise ModelNotFound(
        f"Silero VAD: no {_ASSET} in an installed faster-whisper; "
        "pip install 'faster-whisper>=1.2' or use EnergyVad."
    )


class SileroVad:
    """One stream's Silero state: the network's memory and the tail of the last window."""

    _h: Pcm
    _c: Pcm
    _context: Pcm

    def __init__(self, model: SileroModel) -> None:
        self._model = model
        self.reset()

    @property
    def window(self) -> int:
        return SILERO_WINDOW

    def probability(self, window: Pcm) -> float:
        if window.shape != (SILERO_WINDOW,):
            raise ValueError(f"Silero takes {SILERO_WINDOW} samples, not {window.shape}")
        framed = np.concatenate([self._context, window.astype(np.float32, copy=False)])
        p, self._h, self._c = self._model.run(framed, self._h, self._c)
        self._context = framed[-_CONTEXT:]
        return p

    def reset(self) -> None:
        self._h = np.zeros(_STATE_SHAPE, dtype=np.float32)
        self._c = np.zeros(_STATE_SHAPE, dtype=np.float32)
        self._context = np.zeros(_CONTEXT, dtype=np.float32)


class EnergyVad:
    """Speech (1.0) wherever the window's RMS level reaches `threshold_dbfs`, else 0.0."""

    def __init__(self, threshold_dbfs: float = -45.0, window: int = SILERO_WINDOW) -> None:
        self._threshold = 10.0 ** (threshold_dbfs / 20.0)
        self._window = window

    @property
    def window(self) -> int:
        return self._window

    def probability(self, window: Pcm) -> float:
        rms = float(np.sqrt(np.mean(np.square(window, dtype=np.float64))))
        return 1.0 if rms >= self._threshold else 0.0

    def reset(self) -> None:
        pass
