"""The only place XML is parsed: size-limited, DOCTYPE and entities refused before lxml sees them.

Decision: diagrams are untrusted, so anything that could make the parser fetch, expand or read
(DTDs, entity declarations, XInclude) is refused outright rather than configured away. Only UTF-8
is accepted, decoded by us before the scan, so no encoding can hide a DTD from it (UTF-16 without
a byte-order mark could); a DTD that still reaches the parser is refused after parsing too.
"""

from __future__ import annotations

import re

from lxml import etree

_DECLARATION = re.compile(r"<!\s*(DOCTYPE|ENTITY)", re.IGNORECASE)
_HTML_DOCTYPE = re.compile(r"<!\s*DOCTYPE\s+html\b", re.IGNORECASE)
_HTML = re.compile(r"<\s*(html|body|head)\b", re.IGNORECASE)
_ENCODING = re.compile(rb"""^(?:\xef\xbb\xbf)?<\?xml[^>]*?encoding\s*=\s*["']([^"']*)["']""")
_UTF = frozenset({"utf-8", "utf8", "us-ascii", "ascii"})
_LOCATION = re.compile(r",? line \d+, column \d+\s*$")
_PLAIN_WORDS = (  # libxml2's wording → words for an analyst
    (
        re.compile(r"Opening and ending tag mismatch: (\S+) line (\d+) and (\S+)"),
        "the tag <{0}> opened on line {1} is closed by </{2}>",
    ),
    (
        re.compile(r"Premature end of data in tag (\S+) line (\d+)"),
        "the file ends before <{0}> (opened on line {1}) is closed",
    ),
    (
        re.compile(r"Entity '([^']*)' not defined"),
        "`&{0};` is not an XML character reference (write `&amp;` for a plain &)",
    ),
    (
        re.compile(r"EntityRef: expecting ';'"),
        "a plain & must be written `&amp;` (or use the word 'and')",
    ),
    (re.compile(r"Excessive depth in document: (\d+)"), "the XML nests more than {0} levels deep"),
    (re.compile(r"Start tag expected"), "this is not XML"),
    (re.compile(r"Document is empty"), "this is not XML"),
    (re.compile(r"Extra content at the end"), "there is more after the closing root tag"),
    (re.compile(r"AttValue: \" or ' expected"), "an attribute value is not in quotes"),
)


class XmlRefused(Exception):
    """The file is not acceptable XML; `line` is 1-based where known."""

    def __init__(self, message: str, line: int | None = None):
        super().__init__(message)
        self.message = message
        self.line = line


def _parser() -> etree.XMLParser:
    return etree.XMLParser(
        resolve_entities=False,
        no_network=True,
        load_dtd=False,
        dtd_validation=False,
        huge_tree=False,
        remove_comments=True,
        remove_pis=True,
    )


def _decode(content: bytes) -> str:
    """The text of the file, which must be UTF-8 (what every modeler writes; stored as such)."""
    if content.startswith((b"\xff\xfe", b"\xfe\xff", b"<\x00", b"\x00<")):
        raise XmlRefused("the file is UTF-16 text; save it as UTF-8", 1)
    try:
        return content.decode("utf-8-sig")
    except UnicodeDecodeError as err:
        line = content.count(b"\n", 0, err.start) + 1
        raise XmlRefused("the file is not UTF-8 text; save it as UTF-8", line) from None


def _check_encoding(content: bytes) -> None:
    """Only UTF-8 text; a file that declares another encoding but holds only ASCII reads the
    same either way (many modelers declare ISO-8859-1 by default)."""
    match = _ENCODING.match(content)
    if match and content.isascii():
        return
    if match and match.group(1).decode("ascii", "replace").lower() not in _UTF:
        name = match.group(1).decode("ascii", "replace")
        raise XmlRefused(f"the file declares the encoding {name}; save it as UTF-8", 1)


def _plain(message: str) -> str:
    message = _LOCATION.sub("", message.strip())
    for pattern, words in _PLAIN_WORDS:
        found = pattern.search(message)
        if found:
            return words.format(*found.groups())
    return f"the XML is not well formed: {message}"


def _refuse_declarations(text: str, expected: str) -> None:
    if _HTML_DOCTYPE.search(text):
        raise XmlRefused(f"this looks like HTML, not {expected}", 1)
    match = _DECLARATION.search(text)
    if match:
        raise XmlRefused(
            f"{match.group(1).upper()} declarations are not allowed (they can read files or "
            "blow up memory); remove it",
            text.count("\n", 0, match.start()) + 1,
        )


def parse(content: bytes, *, max_bytes: int, expected: str = "BPMN or DMN") -> etree._Element:
    """Parse `content` into an element tree root, or raise `XmlRefused` saying why and where.

    `expected` names what the file should be ("BPMN", "DMN"), for the message about HTML.
    """
    if len(content) > max_bytes:
        raise XmlRefused(f"the file is {len(content):,} bytes; the limit is {max_bytes:,}")
    if not content.strip():
        raise XmlRefused("the file is empty", 1)
    _check_encoding(content)
    text = _decode(content)
    _refuse_declarations(text, expected)
    try:
        root = etree.fromstring(content, _parser())
    except etree.XMLSyntaxError as err:
        if _HTML.search(text[:2000]):
            raise XmlRefused(f"this looks like HTML, not {expected}", 1) from None
        raise XmlRefused(_plain(err.msg), err.lineno or None) from None
    docinfo = root.getroottree().docinfo
    if docinfo.doctype or docinfo.internalDTD is not None:
        raise XmlRefused("DOCTYPE declarations are not allowed; remove it", 1)
    return root
