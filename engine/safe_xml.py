"""The only place XML is parsed: size-limited, DOCTYPE and entities refused before lxml sees them.

Decision: diagrams are untrusted, so anything that could make the parser fetch, expand or read
(DTDs, entity declarations, XInclude) is refused outright rather than configured away.
"""

from __future__ import annotations

import re

from lxml import etree

_DECLARATION = re.compile(rb"<!\s*(DOCTYPE|ENTITY)", re.IGNORECASE)
_HTML = re.compile(rb"<\s*(html|body|head)\b", re.IGNORECASE)


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


def _line_of(content: bytes, offset: int) -> int:
    return content.count(b"\n", 0, offset) + 1


def _as_utf8(content: bytes) -> bytes:
    # A UTF-16 file would hide "<!DOCTYPE" from the byte scan; normalise before looking.
    if content.startswith((b"\xff\xfe", b"\xfe\xff")):
        text = content.decode("utf-16")
        return re.sub(r"encoding=[\"'][^\"']*[\"']", 'encoding="UTF-8"', text, count=1).encode()
    return content


def parse(content: bytes, *, max_bytes: int) -> etree._Element:
    """Parse `content` into an element tree root, or raise `XmlRefused` saying why and where."""
    if len(content) > max_bytes:
        raise XmlRefused(f"the file is {len(content):,} bytes; the limit is {max_bytes:,}")
    content = _as_utf8(content)
    match = _DECLARATION.search(content)
    if match:
        kind = match.group(1).decode().upper()
        raise XmlRefused(
            f"{kind} declarations are not allowed in diagrams (they can read files or blow up "
            "memory); remove it",
            _line_of(content, match.start()),
        )
    try:
        root = etree.fromstring(content, _parser())
    except etree.XMLSyntaxError as err:
        if _HTML.search(content[:2000]):
            raise XmlRefused("this looks like HTML, not BPMN or DMN", 1) from None
        line = err.lineno or None
        raise XmlRefused(f"the XML is not well formed: {err.msg}", line) from None
    if root is None:
        raise XmlRefused("the file is empty", 1)
    return root
