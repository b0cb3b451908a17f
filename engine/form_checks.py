"""Checks on one form file: UTF-8 JSON, not nested too deep, and a valid JSON Schema.

Decision: a form is untrusted input like a diagram, so its depth is measured iteratively before
JSON Schema validation recurses through it, and a schema error is located on the line of the
keyword at fault.
"""

from __future__ import annotations

import json
import re
from typing import Any

import jsonschema

from engine.errors import Problem
from engine.sources import SourceFile

#: Deepest nesting of objects and lists in a form; JSON Schema validation recurses through it.
MAX_FORM_DEPTH = 64


def load(f: SourceFile) -> tuple[Any, list[Problem]]:
    """The parsed form, or None and why it cannot be used."""
    try:
        text = f.content.decode("utf-8-sig")
        schema = json.loads(text)
    except UnicodeDecodeError:
        return None, [Problem(f.path, None, "the form is not UTF-8 text; save it as UTF-8")]
    except json.JSONDecodeError as err:
        return None, [Problem(f.path, err.lineno, f"the form is not valid JSON: {err.msg}")]
    except RecursionError:
        schema = None
    if schema is None or _depth(schema) > MAX_FORM_DEPTH:
        message = f"the form nests more than {MAX_FORM_DEPTH} levels deep"
        return None, [Problem(f.path, None, message)]
    if not isinstance(schema, dict):
        return None, [Problem(f.path, 1, "a form must be a JSON object ({ ... })")]
    if not f.path.endswith("-uischema.json"):
        try:
            jsonschema.validators.validator_for(schema).check_schema(schema)
        except jsonschema.SchemaError as err:
            path = list(err.absolute_path)
            where = "/".join(str(p) for p in path) or "(top)"
            message = f"the form is not a valid JSON Schema at {where}: {err.message}"
            return None, [Problem(f.path, _json_line(text, path), message)]
    return schema, []


def _depth(value: Any) -> int:
    """How deeply lists and objects nest in `value` (iteratively: the form is untrusted)."""
    deepest, stack = 0, [(value, 1)]
    while stack:
        item, depth = stack.pop()
        children = (
            item.values() if isinstance(item, dict) else item if isinstance(item, list) else ()
        )
        for child in children:
            if isinstance(child, dict | list):
                deepest = max(deepest, depth + 1)
                stack.append((child, depth + 1))
    return max(deepest, 1)


def _json_line(text: str, path: list) -> int:
    """The line of the value at `path`, found by following its keys through the text in order."""
    position = 0
    for key in path:
        if isinstance(key, str):
            found = re.compile(rf'"{re.escape(key)}"\s*:').search(text, position)
            if found is None:
                break
            position = found.start()
    return text.count("\n", 0, position) + 1
