"""The web app's catalogues (issue 16): Arabic and English complete and alike, every word of
the HTML marked for translation, every key the modules ask for present. Chromium tests in
both languages are in test_browser.py (the `languages` scenario)."""

from __future__ import annotations

import json
import re
import subprocess
from html.parser import HTMLParser
from pathlib import Path

import pytest

from majlis.api.pages import WEB_DIR

from .harness import ROOT

LOCALES = WEB_DIR / "js" / "locales"
AREAS = sorted(p.stem for p in (LOCALES / "en").glob("*.js"))
LANGUAGES = ("en", "ar")
PLURAL_FORMS = {"zero", "one", "two", "few", "many", "other"}
PLACEHOLDER = re.compile(r"\{(\w+)\}")
LATIN = re.compile(r"[A-Za-z]")
ARABIC = re.compile(r"[\u0600-\u06FF]")
VOID = {
    "area",
    "base",
    "br",
    "col",
    "embed",
    "hr",
    "img",
    "input",
    "link",
    "meta",
    "source",
    "track",
    "wbr",
}
WORDY_ATTRS = ("aria-label", "placeholder", "title", "alt")

Catalogue = dict[str, str | dict[str, str]]


def load(module: Path) -> Catalogue:
    """A catalogue module's default export, as node reads it."""
    script = f"import m from {json.dumps(module.as_uri())}; console.log(JSON.stringify(m));"
    out = subprocess.run(
        ["node", "--input-type=module", "-e", script],
        capture_output=True,
        text=True,
        check=True,
        cwd=ROOT,
    )
    catalogue: Catalogue = json.loads(out.stdout)
    return catalogue


@pytest.fixture(scope="module")
def catalogues() -> dict[str, Catalogue]:
    return {lang: load(LOCALES / f"{lang}.js") for lang in LANGUAGES}


@pytest.fixture(scope="module")
def areas() -> dict[tuple[str, str], Catalogue]:
    return {
        (lang, area): load(LOCALES / lang / f"{area}.js") for lang in LANGUAGES for area in AREAS
    }


def forms(message: str | dict[str, str]) -> list[str]:
    return list(message.values()) if isinstance(message, dict) else [message]


def placeholders(message: str | dict[str, str]) -> set[str]:
    return {name for text in forms(message) for name in PLACEHOLDER.findall(text)}


def test_every_area_has_both_languages() -> None:
    assert AREAS, "no catalogue areas found"
    for lang in LANGUAGES:
        assert sorted(p.stem for p in (LOCALES / lang).glob("*.js")) == AREAS


def test_arabic_and_english_have_the_same_keys(areas: dict[tuple[str, str], Catalogue]) -> None:
    for area in AREAS:
        en, ar = areas["en", area], areas["ar", area]
        assert sorted(set(en) - set(ar)) == [], f"{area}: not translated into Arabic"
        assert sorted(set(ar) - set(en)) == [], f"{area}: Arabic keys English lacks"


def test_keys_live_in_their_area_once(areas: dict[tuple[str, str], Catalogue]) -> None:
    owner: dict[str, str] = {}
    for area in AREAS:
        prefix = "error." if area == "errors" else f"{area}."
        for key in areas["en", area]:
            assert key.startswith(prefix), f"{key} is in {area}.js; its keys start {prefix}"
            assert key not in owner, f"{key} is in both {owner[key]} and {area}"
            owner[key] = area


def test_messages_agree(catalogues: dict[str, Catalogue]) -> None:
    en, ar = catalogues["en"], catalogues["ar"]
    for key, english in en.items():
        arabic = ar[key]
        for message in (english, arabic):
            if isinstance(message, dict):
                assert "other" in message, f"{key}: a plural needs an 'other' form"
                assert set(message) <= PLURAL_FORMS, f"{key}: unknown plural forms {set(message)}"
            assert all(isinstance(text, str) and text for text in forms(message)), key
        # Arabic may spell a count out ("ثانيتين") but must not invent or drop a value.
        assert placeholders(arabic) <= placeholders(english), f"{key}: {arabic!r}"
        assert placeholders(english) - {"count"} <= placeholders(arabic), f"{key}: {arabic!r}"
        if any(LATIN.search(PLACEHOLDER.sub("", text)) for text in forms(english)):
            assert all(ARABIC.search(text) for text in forms(arabic)), (
                f"{key} is not translated: {arabic!r}"
            )


class Words(HTMLParser):
    """Text and wordy attributes of a page that no data-i18n covers."""

    def __init__(self) -> None:
        super().__init__()
        self.stack: list[tuple[str, bool]] = []  # (tag, covered)
        self.keys: list[str] = []
        self.uncovered: list[str] = []
        self.scripts: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: v or "" for k, v in attrs}
        if tag == "script" and "src" in a:
            self.scripts.append(a["src"])
        covered_attrs: set[str] = set()
        if "data-i18n-attr" in a:
            for pair in a["data-i18n-attr"].split(";"):
                attr, _, key = pair.partition(":")
                covered_attrs.add(attr.strip())
                self.keys.append(key.strip())
        if "data-i18n" in a:
            self.keys.append(a["data-i18n"])
        for attr in WORDY_ATTRS:
            if LATIN.search(a.get(attr, "")) and attr not in covered_attrs:
                self.uncovered.append(f"<{tag} {attr}={a[attr]!r}>")
        parent = self.stack[-1][1] if self.stack else False
        covered = (
            parent or "data-i18n" in a or a.get("translate") == "no" or tag in ("script", "style")
        )
        if tag not in VOID:
            self.stack.append((tag, covered))

    def handle_endtag(self, tag: str) -> None:
        while self.stack:
            if self.stack.pop()[0] == tag:
                break

    def handle_data(self, data: str) -> None:
        covered = self.stack[-1][1] if self.stack else False
        if not covered and LATIN.search(data):
            self.uncovered.append(data.strip())


def words_of(page: Path) -> Words:
    words = Words()
    words.feed(page.read_text())
    words.close()
    return words


@pytest.mark.parametrize("page", sorted(WEB_DIR.glob("*.html")), ids=lambda p: p.name)
def test_every_word_of_the_html_is_in_the_catalogue(
    page: Path, catalogues: dict[str, Catalogue]
) -> None:
    words = words_of(page)
    assert words.uncovered == [], f"{page.name}: words no data-i18n covers"
    missing = [key for key in words.keys if key not in catalogues["en"]]
    assert missing == [], f"{page.name}: keys the catalogue lacks"
    # lang.js runs before the first paint: a classic script in <head>, before any module.
    assert words.scripts and words.scripts[0] == "/static/js/lang.js", words.scripts


def test_every_key_the_modules_ask_for_exists(catalogues: dict[str, Catalogue]) -> None:
    asked = re.compile(r"""\bt\(\s*(['"])([\w.]+)\1""")
    missing = []
    for module in sorted((WEB_DIR / "js").rglob("*.js")):
        if LOCALES in module.parents:
            continue
        for match in asked.finditer(module.read_text()):
            if match.group(2) not in catalogues["en"]:
                missing.append(f"{module.relative_to(WEB_DIR)}: {match.group(2)}")
    assert missing == []


def test_the_checks_above_can_fail(tmp_path: Path) -> None:
    """The HTML scan finds an unmarked word, an unmarked label and a covered one."""
    page = tmp_path / "p.html"
    page.write_text(
        '<script src="/static/js/lang.js"></script><main><h1>Hello</h1>'
        '<p data-i18n="x.y">Fine <b>nested</b></p><input placeholder="Type here">'
        '<button aria-label="Close" data-i18n-attr="aria-label:x.close">×</button></main>'
    )
    words = words_of(page)
    assert words.uncovered == ["Hello", "<input placeholder='Type here'>"]
    assert words.keys == ["x.y", "x.close"]


def test_every_error_code_the_server_sends_is_translated(catalogues: dict[str, Catalogue]) -> None:
    """The UI shows an Arabic reader a server error from its stable code: each code named
    in the server's source needs its `error.<code>` message."""
    source = ROOT / "src" / "majlis"
    named = re.compile(r"""\bcode\s*=\s*["']([a-z_]+)["']""")
    codes = {code for path in source.rglob("*.py") for code in named.findall(path.read_text())}
    assert len(codes) > 50, "the pattern no longer finds the server's error codes"
    missing = sorted(code for code in codes if f"error.{code}" not in catalogues["en"])
    assert missing == []
