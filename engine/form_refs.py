"""Shared field types: a form's `$ref` to another file of its bundle, made self-contained.

Decision: a form may say `{"$ref": "../_shared/person.json#/$defs/mobile"}` (relative to its own
file, as an editor resolves it). When a version is loaded, every referenced document is copied
into the form's `$defs` and the reference pointed there, so validation, the web forms and the
API all see one self-contained schema and never read a file or a URL. A reference that leads
nowhere is refused at deployment (`check`), naming the form and the reference.
"""

from __future__ import annotations

import copy
import posixpath
import re
from typing import Any

#: Where copied documents go inside a form's `$defs`.
PREFIX = "_file:"


class UnresolvedRef(ValueError):
    def __init__(self, ref: str, reason: str):
        super().__init__(f"the reference `{ref}` {reason}")
        self.ref = ref


def _target(path: str, ref: str) -> tuple[str, str]:
    """The bundle path and JSON pointer a reference in the form at `path` names."""
    file_part, _, pointer = ref.partition("#")
    if re.match(r"^[a-z][a-z0-9+.-]*:", file_part, re.IGNORECASE):
        raise UnresolvedRef(ref, "points outside the bundle; use a path such as ../_shared/x.json")
    return posixpath.normpath(posixpath.join(posixpath.dirname(path), file_part)), pointer


def _pointed(document: Any, pointer: str, ref: str) -> None:
    """Refuse a pointer that does not lead to a value of `document`."""
    node = document
    for raw in [p for p in pointer.split("/") if p]:
        part = raw.replace("~1", "/").replace("~0", "~")
        if isinstance(node, dict) and part in node:
            node = node[part]
        elif isinstance(node, list) and part.isdigit() and int(part) < len(node):
            node = node[int(part)]
        else:
            raise UnresolvedRef(ref, f"names `{pointer}`, which that file does not have")


def _key(path: str) -> str:
    """The `$defs` key of a copied file (no "/" in it, so pointers need no escaping)."""
    return PREFIX + path.replace("/", "__")


def _rewrite(node: Any, path: str, context: tuple[str, dict[str, Any], dict[str, Any]]) -> Any:
    """A copy of `node` (from the file at `path`) whose references all resolve in the root."""
    root, forms, found = context
    node = copy.deepcopy(node)
    stack = [node]
    while stack:
        item = stack.pop()
        children = (
            item.values() if isinstance(item, dict) else item if isinstance(item, list) else ()
        )
        stack.extend(c for c in children if isinstance(c, dict | list))
        ref = item.get("$ref") if isinstance(item, dict) else None
        if not isinstance(ref, str) or (ref.startswith("#") and path == root):
            continue  # the root's own "#/..." references already resolve
        target, pointer = (path, ref[1:]) if ref.startswith("#") else _target(path, ref)
        if target not in forms:
            raise UnresolvedRef(ref, f"names the file {target}, which is not in this bundle")
        _pointed(forms[target], pointer, ref)
        if target == root:
            item["$ref"] = "#" + pointer
            continue
        if target not in found:
            found[target] = None  # reserved before rewriting, so reference cycles end
            found[target] = _rewrite(forms[target], target, context)
        item["$ref"] = f"#/$defs/{_key(target)}{pointer}"
    return node


def self_contained(path: str, forms: dict[str, Any]) -> dict[str, Any]:
    """The form at `path` with every file it references (transitively) copied into `$defs`."""
    found: dict[str, Any] = {}
    schema = _rewrite(forms[path], path, (path, forms, found))
    if not found:
        return forms[path]
    defs = schema.get("$defs", {}) if isinstance(schema.get("$defs"), dict) else {}
    schema["$defs"] = {**defs, **{_key(p): d for p, d in found.items()}}
    return schema


def check(path: str, forms: dict[str, Any]) -> str | None:
    """Why the references of the form at `path` cannot be followed, or None."""
    try:
        self_contained(path, forms)
    except UnresolvedRef as err:
        return str(err)
    return None
