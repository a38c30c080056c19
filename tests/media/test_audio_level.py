"""Our vectorised audio level equals aiortc's own, and is what aiortc's senders use."""

from __future__ import annotations

import av
import numpy as np
import pytest
from aiortc import rtp

from majlis.media import audio_level


@pytest.mark.parametrize("amplitude", [0, 1, 7, 100, 3000, 20000, 32767])
@pytest.mark.parametrize("layout", ["mono", "stereo"])
def test_same_level_as_aiortc(amplitude: int, layout: str) -> None:
    channels = 2 if layout == "stereo" else 1
    samples = (np.sin(np.arange(960 * channels) / 7.0) * amplitude).astype(np.int16)
    frame = av.AudioFrame.from_ndarray(samples.reshape(1, -1), format="s16", layout=layout)
    frame.sample_rate = 48000
    assert audio_level.audio_level_dbov(frame) == audio_level.aiortc_audio_level_dbov(frame)


def test_installed_for_aiortcs_senders() -> None:
    import majlis.media.speaker_client  # noqa: F401  (installs on import)

    assert rtp.compute_audio_level_dbov is audio_level.audio_level_dbov
