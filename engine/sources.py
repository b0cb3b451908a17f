"""Reading a bundle from disk: its diagrams, decision tables and forms, as bytes with paths.

A bundle is `processes/<key>/` (`.bpmn`, `.dmn`, and `.json` data an operator reads, such as
the scorecard and the notification texts) plus `forms/<key>/` and the shared field types
in `forms/_shared/`. Paths are kept relative (`processes/<key>/x.bpmn`) so messages and stored
versions read the same on every machine.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from pathlib import Path

from engine.errors import Problem, ValidationFailed

KEY_PATTERN = re.compile(r"^[a-z][a-z0-9_]{1,79}$")
KINDS = {".bpmn": "bpmn", ".dmn": "dmn", ".json": "form"}


@dataclass(frozen=True)
class SourceFile:
    path: str
    kind: str
    content: bytes

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.content).hexdigest()


@dataclass(frozen=True)
class BundleSource:
    key: str
    files: tuple[SourceFile, ...]

    @property
    def checksum(self) -> str:
        """One digest over every path and content: equal checksums mean identical bundles."""
        digest = hashlib.sha256()
        for f in sorted(self.files, key=lambda f: f.path):
            digest.update(f.path.encode() + b"\0" + f.sha256.encode() + b"\n")
        return digest.hexdigest()

    def of_kind(self, kind: str) -> list[SourceFile]:
        return [f for f in self.files if f.kind == kind]


def _read_folder(folder: Path, prefix: str, suffixes: tuple[str, ...]) -> list[SourceFile]:
    if not folder.is_dir():
        return []
    return [
        SourceFile(f"{prefix}/{p.relative_to(folder).as_posix()}", KINDS[p.suffix], p.read_bytes())
        for p in sorted(folder.rglob("*"))
        if p.is_file() and p.suffix in suffixes
    ]


def read_bundle(folder: Path, forms_dir: Path) -> BundleSource:
    """The bundle in `folder` (a `processes/<key>` directory) with its forms."""
    folder = folder.resolve()
    key = folder.name
    if not folder.is_dir():
        raise ValidationFailed([Problem(str(folder), None, "no such bundle folder")])
    if not KEY_PATTERN.match(key):
        raise ValidationFailed(
            [
                Problem(
                    str(folder),
                    None,
                    f"the bundle folder name `{key}` must be "
                    "snake_case (a-z, 0-9, _), e.g. personal_loan",
                )
            ]
        )
    files = _read_folder(folder, f"processes/{key}", (".bpmn", ".dmn"))
    files += [
        SourceFile(f.path, "data", f.content)
        for f in _read_folder(folder, f"processes/{key}", (".json",))
    ]
    files += _read_folder(forms_dir / key, f"forms/{key}", (".json",))
    files += _read_folder(forms_dir / "_shared", "forms/_shared", (".json",))
    return BundleSource(key, tuple(files))


def bundle_folders(path: Path) -> list[Path]:
    """`processes/x` is one bundle; `processes/` is every bundle folder in it."""
    path = path.resolve()
    if not path.is_dir():
        what = "is a file; give its bundle folder" if path.exists() else "does not exist"
        raise ValidationFailed([Problem(str(path), None, f"the folder {what}")])
    if any(p.suffix in (".bpmn", ".dmn") for p in path.glob("*")):
        return [path]
    folders = sorted(p for p in path.iterdir() if p.is_dir() and not p.name.startswith((".", "_")))
    if not folders:
        message = "no bundle here: expected .bpmn files, or bundle folders such as personal_loan/"
        raise ValidationFailed([Problem(str(path), None, message)])
    return folders
