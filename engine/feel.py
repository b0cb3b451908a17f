"""The FEEL that decision tables use, translated into the sandbox's language at deploy time.

Decision: FEEL is never evaluated. Input entries are unary tests — `-`, `< 1000`, `[1..5]`,
`]0..10[`, `"a","b"`, `not("x")`, `= x`, a literal or a variable — and are written out as a
test in the form SpiffArena's Python cells already use, with `?` standing for the input value
(`[1..5]` → `? >= 1 and ? <= 5`). Input expressions and output entries are simple FEEL
expressions: literals, variables and paths (`applicant.age` → `applicant['age']`), arithmetic,
comparisons, `and`/`or`, `not(…)`, `if … then … else …`, lists and `date("…")` (an ISO date
text). Text outside this subset returns None, so a cell written in Python (SpiffArena's own
style) is still read as Python: FEEL first, Python second, one meaning per cell.
"""

from __future__ import annotations

import keyword
import re

_TOKEN = re.compile(
    r"""\s*(?:
      (?P<number>\d+(?:\.\d+)?)
    | (?P<string>"(?:[^"\\]|\\.)*")
    | (?P<name>[A-Za-z_][A-Za-z0-9_]*)
    | (?P<op>\.\.|<=|>=|!=|\*\*|[-+*/<>=(),.\[\]])
    )""",
    re.VERBOSE,
)
LITERALS = {"true": "True", "false": "False", "null": "None"}
RESERVED = frozenset({"if", "then", "else", "and", "or", "not", "between", "in", "for", "some"})
_COMPARE = {"=": "==", "!=": "!=", "<": "<", "<=": "<=", ">": ">", ">=": ">="}


class _NotFeel(Exception):
    """The text is outside the FEEL subset (it may still be Python)."""


def _tokens(text: str) -> list[tuple[str, str]]:
    tokens, position, end = [], 0, len(text.rstrip())
    while position < end:
        match = _TOKEN.match(text, position)
        if match is None or match.end() == position:
            raise _NotFeel
        tokens.append((match.lastgroup, match.group(match.lastgroup)))
        position = match.end()
    return tokens


class _Parser:
    def __init__(self, text: str):
        self.tokens, self.at = _tokens(text), 0

    def peek(self, offset: int = 0) -> str | None:
        at = self.at + offset
        return self.tokens[at][1] if at < len(self.tokens) else None

    def take(self, expected: str | None = None) -> tuple[str, str]:
        if self.at >= len(self.tokens) or expected not in (None, self.tokens[self.at][1]):
            raise _NotFeel
        self.at += 1
        return self.tokens[self.at - 1]

    def done(self, result: str) -> str:
        if self.at != len(self.tokens):
            raise _NotFeel
        return result

    # -- unary tests: Python with `?` for the input value

    def tests(self) -> str:
        if self.peek() == "not" and self.peek(1) == "(":
            self.take()
            self.take("(")
            inner = self.positive_tests()
            self.take(")")
            return f"not ({inner})"
        return self.positive_tests()

    def positive_tests(self) -> str:
        tests = [self.positive()]
        while self.peek() == ",":
            self.take()
            tests.append(self.positive())
        values = [t[len("? == ") :] for t in tests if t.startswith("? == ")]
        if len(tests) > 1 and len(values) == len(tests):
            return f"? in ({', '.join(values)},)"
        return " or ".join(f"({t})" for t in tests) if len(tests) > 1 else tests[0]

    def positive(self) -> str:
        token = self.peek()
        if token in _COMPARE:
            self.take()
            return f"? {_COMPARE[token]} {self.sum()}"
        if token in ("[", "]", "(") and self._is_interval():
            return self.interval()
        return f"? == {self.sum()}"

    def _is_interval(self) -> bool:
        depth = 0
        for kind, text in self.tokens[self.at + 1 :]:
            depth += {"(": 1, "[": 1, ")": -1, "]": -1}.get(text, 0) if kind == "op" else 0
            if text == ".." and depth == 0:
                return True
            if depth < 0 or text == ",":
                return False
        return False

    def interval(self) -> str:
        opening = self.take()[1]
        low = self.sum()
        self.take("..")
        high = self.sum()
        closing = self.take()[1]
        if closing not in ("]", ")", "["):
            raise _NotFeel
        low_op = ">=" if opening == "[" else ">"
        high_op = "<=" if closing == "]" else "<"
        return f"? {low_op} {low} and ? {high_op} {high}"

    # -- expressions

    def expression(self) -> str:
        if self.peek() == "if":
            self.take()
            condition = self.expression()
            self.take("then")
            yes = self.expression()
            self.take("else")
            return f"({yes} if {condition} else {self.expression()})"
        return self.disjunction()

    def disjunction(self) -> str:
        left = self.conjunction()
        while self.peek() == "or":
            self.take()
            left = f"({left} or {self.conjunction()})"
        return left

    def conjunction(self) -> str:
        left = self.comparison()
        while self.peek() == "and":
            self.take()
            left = f"({left} and {self.comparison()})"
        return left

    def comparison(self) -> str:
        left = self.sum()
        if self.peek() in _COMPARE:
            return f"({left} {_COMPARE[self.take()[1]]} {self.sum()})"
        if self.peek() == "between":
            self.take()
            low = self.sum()
            self.take("and")
            return f"({low} <= {left} <= {self.sum()})"
        return left

    def sum(self) -> str:
        left = self.product()
        while self.peek() in ("+", "-"):
            left = f"({left} {self.take()[1]} {self.product()})"
        return left

    def product(self) -> str:
        left = self.unary()
        while self.peek() in ("*", "/", "**"):
            left = f"({left} {self.take()[1]} {self.unary()})"
        return left

    def unary(self) -> str:
        if self.peek() == "-":
            self.take()
            return f"(-{self.unary()})"
        return self.primary()

    def primary(self) -> str:
        kind, text = self.take()
        if kind == "number":
            return text
        if kind == "string":
            return repr(_unquote(text))
        if text == "(":
            inner = self.expression()
            self.take(")")
            return inner
        if text == "[":
            return self.list_literal()
        if kind != "name" or text in RESERVED - {"not"}:
            raise _NotFeel
        if text in LITERALS:
            return LITERALS[text]
        if self.peek() == "(":
            return self.call(text)
        return self.path(text)

    def list_literal(self) -> str:
        items = []
        while self.peek() != "]":
            items.append(self.expression())
            if self.peek() != "]":
                self.take(",")
        self.take("]")
        return f"[{', '.join(items)}]"

    def call(self, function: str) -> str:
        self.take("(")
        if function == "not":
            inner = self.expression()
            self.take(")")
            return f"(not {inner})"
        kind, text = self.take()
        self.take(")")
        if function == "date" and kind == "string":  # ISO dates compare correctly as text
            return repr(_unquote(text))
        raise _NotFeel

    def path(self, name: str) -> str:
        if keyword.iskeyword(name) and name not in ("True", "False", "None"):
            raise _NotFeel
        result = name
        while self.peek() == ".":
            self.take()
            kind, field = self.take()
            if kind != "name":
                raise _NotFeel
            result = f"{result}[{field!r}]"
        return result


def _unquote(literal: str) -> str:
    return re.sub(r"\\(.)", r"\1", literal[1:-1])


def unary_tests(text: str) -> str | None:
    """An input entry as a test with `?` for the input; None for `-` (any value) or an empty cell.

    Raises ValueError when the text is not FEEL (the caller may then read it as Python).
    """
    stripped = (text or "").strip()
    if stripped in ("", "-"):
        return None
    try:
        parser = _Parser(stripped)
        return parser.done(parser.tests())
    except (_NotFeel, RecursionError):
        raise ValueError(f"not a FEEL unary test: {stripped}") from None


def expression(text: str) -> str:
    """A FEEL expression as a sandbox expression; ValueError when it is not FEEL."""
    stripped = (text or "").strip()
    try:
        parser = _Parser(stripped)
        return parser.done(parser.expression())
    except (_NotFeel, RecursionError):
        raise ValueError(f"not a FEEL expression: {stripped}") from None
