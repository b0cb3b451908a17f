"""Camunda's expression language (JUEL) translated into the sandbox's language, at deploy time.

Decision: JUEL is never evaluated. The subset people write in Camunda Modeler — `${amount > 1000}`,
`#{approved}`, `!`, `&&`, `||`, `and`, `or`, `not`, `empty`, `==`/`eq`, `!=`/`ne`, `lt`/`gt`/
`le`/`ge`, arithmetic, `a ? b : c`, string and number literals, `true`/`false`/`null` and
property access (`applicant.age` → `applicant['age']`) — is parsed here and written out as an
`engine.expressions` expression, which then runs in the same sandbox as every other expression.
Anything else (method calls, functions, Camunda's Java objects such as `execution`) is refused
with the offending text, so a diagram fails at deploy, not at the first applicant.
"""

from __future__ import annotations

import keyword
import re
from dataclasses import dataclass

_TOKEN = re.compile(
    r"""\s*(?:
      (?P<number>\d+\.\d*(?:[eE][+-]?\d+)?|\.\d+(?:[eE][+-]?\d+)?|\d+(?:[eE][+-]?\d+)?)
    | (?P<string>'(?:[^'\\]|\\.)*'|"(?:[^"\\]|\\.)*")
    | (?P<name>[A-Za-z_$][A-Za-z0-9_$]*)
    | (?P<op>&&|\|\||==|!=|<=|>=|[-+*/%!<>?:.,\[\]()]|\})
    )""",
    re.VERBOSE,
)
WORDS = {"and": "and", "or": "or", "not": "!", "eq": "==", "ne": "!=", "lt": "<", "gt": ">"}
WORDS |= {"le": "<=", "ge": ">=", "div": "/", "mod": "%"}
LITERALS = {"true": "True", "false": "False", "null": "None"}
_LEVELS = (  # binary operators from the loosest to the tightest, with their Python spelling
    {"||": "or", "or": "or"},
    {"&&": "and", "and": "and"},
    {"==": "==", "!=": "!="},
    {"<": "<", ">": ">", "<=": "<=", ">=": ">="},
    {"+": "+", "-": "-"},
    {"*": "*", "/": "/", "%": "%"},
)
# Camunda's own objects: they exist only inside Camunda's Java engine.
JAVA_OBJECTS = frozenset({"execution", "task", "authenticatedUserId", "camunda", "externalTask"})
_ESCAPES = {"\\'": "'", '\\"': '"', "\\\\": "\\"}


class JuelError(ValueError):
    """A JUEL text that cannot be translated; `reason` is in an analyst's words."""

    def __init__(self, reason: str, text: str):
        super().__init__(f"`{text.strip()}`: {reason}")
        self.reason = reason
        self.text = text


def is_juel(text: str | None) -> bool:
    return bool(text) and ("${" in text or "#{" in text)


@dataclass
class _Token:
    kind: str
    text: str


def _tokens(body: str, whole: str) -> list[_Token]:
    """The tokens of one `${...}` body; JUEL's word operators become their symbols."""
    tokens, position = [], 0
    while position < len(body.rstrip()):
        match = _TOKEN.match(body, position)
        if match is None or match.end() == position:
            raise JuelError(f"`{body[position:].strip()[:20]}` is not understood", whole)
        kind = match.lastgroup
        text = match.group(kind)
        if kind == "name" and text in WORDS:
            kind, text = "op", WORDS[text]
        tokens.append(_Token(kind, text))
        position = match.end()
    return tokens


class _Parser:
    """Recursive descent over one expression body, writing Python as it goes."""

    def __init__(self, tokens: list[_Token], whole: str):
        self.tokens, self.whole, self.at = tokens, whole, 0

    def peek(self) -> str | None:
        return self.tokens[self.at].text if self.at < len(self.tokens) else None

    def peek_at(self, offset: int) -> str | None:
        at = self.at + offset
        return self.tokens[at].text if at < len(self.tokens) else None

    def take(self, expected: str | None = None) -> _Token:
        if self.at >= len(self.tokens):
            raise JuelError("the expression ends too early", self.whole)
        token = self.tokens[self.at]
        if expected is not None and token.text != expected:
            raise JuelError(f"expected `{expected}` but found `{token.text}`", self.whole)
        self.at += 1
        return token

    def parse(self) -> str:
        if not self.tokens:
            raise JuelError("the expression is empty", self.whole)
        result = self.ternary()
        if self.at < len(self.tokens):
            raise JuelError(f"`{self.peek()}` is not understood here", self.whole)
        return result

    def ternary(self) -> str:
        condition = self.binary(0)
        if self.peek() != "?":
            return condition
        self.take("?")
        yes = self.ternary()
        self.take(":")
        return f"({yes} if {condition} else {self.ternary()})"

    def binary(self, level: int) -> str:
        if level == len(_LEVELS):
            return self.unary()
        left = self.binary(level + 1)
        while self.peek() in _LEVELS[level] and self.tokens[self.at].kind == "op":
            operator = _LEVELS[level][self.take().text]
            left = f"({left} {operator} {self.binary(level + 1)})"
        return left

    def unary(self) -> str:
        token = self.peek()
        if token in ("!", "-") and self.tokens[self.at].kind == "op":
            self.take()
            operand = self.unary()
            return f"(not {operand})" if token == "!" else f"(-{operand})"
        if token == "empty" and self.tokens[self.at].kind == "name":
            self.take()
            return f"({self.unary()} in (None, '', [], {{}}))"
        return self.value()

    def value(self) -> str:
        token = self.take()
        if token.kind == "number":
            return token.text
        if token.kind == "string":
            return repr(_unquote(token.text))
        if token.text == "(":
            inner = self.ternary()
            self.take(")")
            return inner
        if token.kind != "name":
            raise JuelError(f"`{token.text}` is not understood here", self.whole)
        if token.text in LITERALS:
            return LITERALS[token.text]
        if self.peek() == ":" and self.peek_at(2) == "(":  # `fn:name(...)`
            function = f"{token.text}:{self.peek_at(1)}"
            raise JuelError(f"functions (`{function}`) are not supported", self.whole)
        return self.suffixes(_name(token.text, self.whole))

    def suffixes(self, result: str) -> str:
        while self.peek() in (".", "[", "("):
            mark = self.take().text
            if mark == "(":
                raise JuelError(
                    "calling methods or functions is not supported; use a field, or compute "
                    "the value in a script task first",
                    self.whole,
                )
            if mark == ".":
                field = self.take()
                if self.peek() == "(":
                    self.take()
                    raise JuelError(
                        f"calling methods (`.{field.text}()`) is not supported; read a field "
                        "instead, or compute the value in a script task first",
                        self.whole,
                    )
                if field.kind != "name":
                    raise JuelError(f"`.{field.text}` is not a field name", self.whole)
                result = f"{result}[{field.text!r}]"
            else:
                index = self.ternary()
                self.take("]")
                result = f"{result}[{index}]"
        return result


def _unquote(literal: str) -> str:
    return re.sub(r"\\.", lambda m: _ESCAPES.get(m.group(0), m.group(0)), literal[1:-1])


def _name(name: str, whole: str) -> str:
    if name in JAVA_OBJECTS:
        raise JuelError(
            f"`{name}` is Camunda's Java object, which does not exist here; use process "
            "variables only",
            whole,
        )
    if "$" in name or keyword.iskeyword(name) or name.startswith("__"):
        raise JuelError(f"the variable name `{name}` cannot be used; rename the variable", whole)
    return name


def _parts(text: str) -> list[tuple[bool, str]]:
    """`text` split into literal text (False) and `${...}`/`#{...}` bodies (True)."""
    parts, position = [], 0
    for start in (m.start() for m in re.finditer(r"[$#]\{", text)):
        if start < position:
            continue
        end = _closing_brace(text, start + 2)
        if end is None:
            raise JuelError("a `${` is never closed with `}`", text)
        if start > position:
            parts.append((False, text[position:start]))
        parts.append((True, text[start + 2 : end]))
        position = end + 1
    if position < len(text):
        parts.append((False, text[position:]))
    return parts


def _closing_brace(text: str, position: int) -> int | None:
    quote = None
    while position < len(text):
        char = text[position]
        if quote:
            if char == "\\":
                position += 1
            elif char == quote:
                quote = None
        elif char in "'\"":
            quote = char
        elif char == "}":
            return position
        position += 1
    return None


def _translate_body(body: str, whole: str) -> str:
    result = _Parser(_tokens(body, whole), whole).parse()
    if result.startswith("(") and result.endswith(")") and _balanced(result[1:-1]):
        return result[1:-1]
    return result


def _balanced(text: str) -> bool:
    depth = 0
    for char in text:
        depth += {"(": 1, ")": -1}.get(char, 0)
        if depth < 0:
            return False
    return depth == 0


def expression(text: str) -> str:
    """One `${...}` (a condition, a timer, an assignee…) as a sandbox expression."""
    parts = [p for p in _parts(text.strip()) if p[0] or p[1].strip()]
    if len(parts) != 1 or not parts[0][0]:
        raise JuelError("write exactly one `${...}` expression here", text)
    return _translate_body(parts[0][1], text)


def value(text: str) -> str:
    """A value that may mix text and expressions (`Dear ${name}`) as a sandbox expression;
    plain text becomes a string literal."""
    pieces = []
    for is_code, part in _parts(text):
        if not is_code:
            pieces.append(repr(part))
        elif len(_parts(text)) == 1:
            return _translate_body(part, text)
        else:
            pieces.append(f"str({_translate_body(part, text)})")
    return " + ".join(pieces) or "''"
