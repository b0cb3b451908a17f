"""Every string a page shows has its Chinese, and the compiled catalogues match their sources."""

from pathlib import Path

from babel.messages.extract import extract_from_dir
from babel.messages.mofile import read_mo
from babel.messages.pofile import read_po

WEB = Path(__file__).resolve().parents[2] / "web"
METHODS = [("**.py", "python"), ("**/templates/**.html", "jinja2")]


def _catalogues():
    return sorted(WEB.glob("**/translations/zh/LC_MESSAGES/messages.po"))


def test_every_compiled_catalogue_matches_its_source():
    """A .mo left behind after editing its .po would show stale Chinese: run pybabel compile."""
    for po_path in _catalogues():
        with po_path.open("rb") as po, po_path.with_suffix(".mo").open("rb") as mo:
            source, compiled = read_po(po), read_mo(mo)
        expected = {m.id: m.string for m in source if m.id and m.string and not m.fuzzy}
        actual = {m.id: m.string for m in compiled if m.id}
        assert actual == expected, f"{po_path}: run `pybabel compile -d {po_path.parents[2]}`"


def test_every_visible_string_has_a_chinese_translation():
    """Chinese is the default language: an untranslated string would show in English."""
    translated = set()
    for po_path in _catalogues():
        with po_path.open("rb") as po:
            translated |= {m.id for m in read_po(po) if m.id and m.string}
    missing = []
    for filename, _line, message, _comments, _context in extract_from_dir(
        str(WEB), METHODS, keywords={"_": None, "gettext": None, "lazy_gettext": None}
    ):
        msgid = message if isinstance(message, str) else message[0]
        if msgid not in translated:
            missing.append(f"web/{filename}: {msgid}")
    assert missing == []
