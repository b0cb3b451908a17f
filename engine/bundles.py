"""Deploying bundles: validate, version, store, and make live at once for new instances.

Decision: a version is immutable and the live one is simply the highest version of a bundle,
read from the database on every start, so a deploy is live in every web and worker process with
no restart. Deploying the live content again is a no-op; deploying older content (a rollback)
is a new version that records which earlier one it equals.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import bindparam, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from engine import audit, directory, form_refs, operators, spiff
from engine.config import Settings
from engine.errors import Conflict, NotFound, Problem, ValidationFailed
from engine.models import BundleFile, BundleVersion
from engine.sources import BundleSource, bundle_folders, read_bundle
from engine.validation import Context, ParsedBundle, TaskMeta, validate


@dataclass(frozen=True)
class DeployResult:
    key: str
    version: int
    created: bool
    same_as_version: int | None
    warnings: tuple[Problem, ...] = ()


@dataclass(frozen=True)
class LoadedVersion:
    """What running an instance needs of its version; cached per process by `uid`."""

    id: int
    uid: str
    key: str
    version: int
    main_process_id: str
    specs: dict[str, Any]
    tasks: dict[str, TaskMeta]
    forms: dict[str, str]  # deployed path → content
    data: dict[str, str]  # operator data by file name (`scorecard.json`) → content


_CACHE: dict[str, LoadedVersion] = {}


def context(session: Session, settings: Settings) -> Context:
    return Context(
        directory.lane_lookup(session), frozenset(operators.names()), settings.max_file_bytes
    )


def check(session: Session, settings: Settings, path: Path) -> list[ParsedBundle]:
    """Validate every bundle under `path` (one bundle folder, or `processes/`)."""
    ctx = context(session, settings)
    return [
        validate(read_bundle(folder, settings.forms_dir), ctx) for folder in bundle_folders(path)
    ]


def deploy_path(session: Session, settings: Settings, path: Path, actor: str) -> list[DeployResult]:
    """Deploy every bundle under `path`; if any has an error, none is deployed."""
    ctx = context(session, settings)
    sources = [read_bundle(folder, settings.forms_dir) for folder in bundle_folders(path)]
    parsed = [validate(source, ctx) for source in sources]
    errors = [p for result in parsed for p in result.errors]
    if errors:
        raise ValidationFailed(errors)
    return [_store(session, settings, s, p, actor) for s, p in zip(sources, parsed, strict=True)]


def deploy(session: Session, settings: Settings, source: BundleSource, actor: str) -> DeployResult:
    """Validate and deploy one bundle given as content (for the API and the web console)."""
    parsed = validate(source, context(session, settings))
    if not parsed.ok:
        raise ValidationFailed(parsed.errors)
    return _store(session, settings, source, parsed, actor)


def _store(
    session, settings, source: BundleSource, parsed: ParsedBundle, actor: str
) -> DeployResult:
    warnings = tuple(p for p in parsed.problems if p.severity != "error")
    live = live_version(session, source.key)
    if live is not None and live.checksum == parsed.checksum:
        return DeployResult(source.key, live.version, False, None, warnings)
    same = session.scalar(
        select(BundleVersion.version)
        .where(BundleVersion.bundle_key == source.key, BundleVersion.checksum == parsed.checksum)
        .order_by(BundleVersion.version.desc())
        .limit(1)
    )
    version = BundleVersion(
        bundle_key=source.key,
        version=(live.version if live else 0) + 1,
        checksum=parsed.checksum,
        uid=uuid.uuid4().hex,
        dialect=parsed.dialect,
        main_process_id=parsed.main_process_id,
        specs_json=spiff.specs_to_json(parsed.specs),
        tasks_json=json.dumps({k: asdict(v) for k, v in parsed.tasks.items()}, ensure_ascii=False),
        deployed_by=actor,
        same_as_version=same,
    )
    session.add(version)
    for f in source.files:
        session.add(
            BundleFile(
                bundle_version=version,
                path=f.path,
                kind=f.kind,
                sha256=f.sha256,
                content=f.content.decode("utf-8"),
            )
        )
    for path, content in parsed.generated_forms.items():  # Camunda's generated forms
        digest = hashlib.sha256(content.encode("utf-8")).hexdigest()
        session.add(
            BundleFile(
                bundle_version=version, path=path, kind="form", sha256=digest, content=content
            )
        )
    try:
        session.flush()
    except IntegrityError:
        raise Conflict(
            f"bundle `{source.key}` was deployed by someone else at the same moment; deploy again"
        ) from None
    audit.append(
        session,
        key=settings.secret_key,
        stream=audit.bundle_stream(source.key),
        kind="deploy",
        actor=actor,
        data={
            "version": version.version,
            "checksum": version.checksum,
            "same_as_version": same,
            "files": [{"path": f.path, "sha256": f.sha256} for f in source.files],
        },
    )
    return DeployResult(source.key, version.version, True, same, warnings)


def live_version(session: Session, key: str) -> BundleVersion | None:
    return session.scalar(
        select(BundleVersion)
        .where(BundleVersion.bundle_key == key)
        .order_by(BundleVersion.version.desc())
        .limit(1)
    )


def live_versions(session: Session) -> list[BundleVersion]:
    """The live version of every deployed bundle (what an applicant may start)."""
    keys = session.scalars(select(BundleVersion.bundle_key).distinct()).all()
    return [v for v in (live_version(session, k) for k in sorted(keys)) if v is not None]


def load(
    session: Session, *, uid: str | None = None, version_id: int | None = None
) -> LoadedVersion:
    """A deployed version ready to run, from this process's cache when it was loaded before."""
    if uid is not None and uid in _CACHE:
        return _CACHE[uid]
    query = select(BundleVersion).where(
        BundleVersion.uid == uid if uid is not None else BundleVersion.id == version_id
    )
    row = session.scalar(query)
    if row is None:
        raise NotFound("no such deployed version")
    texts = session.execute(
        select(BundleFile.kind, BundleFile.path, BundleFile.content).where(
            BundleFile.bundle_version_id == row.id, BundleFile.kind.in_(("form", "data"))
        )
    ).all()
    forms = _self_contained({path: content for kind, path, content in texts if kind == "form"})
    data = {path.rsplit("/", 1)[-1]: content for kind, path, content in texts if kind == "data"}
    loaded = LoadedVersion(
        row.id,
        row.uid,
        row.bundle_key,
        row.version,
        row.main_process_id,
        spiff.specs_from_json(row.specs_json),
        {k: TaskMeta(**v) for k, v in json.loads(row.tasks_json).items()},
        forms,
        data,
    )
    _CACHE[row.uid] = loaded
    return loaded


def _self_contained(forms: dict[str, str]) -> dict[str, str]:
    """Forms whose `$ref`s name other files get those files copied in (see engine.form_refs)."""
    if not any('"$ref"' in text and ".json" in text for text in forms.values()):
        return forms
    parsed = {path: json.loads(text) for path, text in forms.items()}
    return {
        path: json.dumps(form_refs.self_contained(path, parsed), ensure_ascii=False)
        if path.endswith("-schema.json")
        else text
        for path, text in forms.items()
    }


#: Only the uid: the cache has the rest, and the row's specs text is large. Built once.
_LIVE_UID = (
    select(BundleVersion.uid)
    .where(BundleVersion.bundle_key == bindparam("key"))
    .order_by(BundleVersion.version.desc())
    .limit(1)
)


def load_live(session: Session, key: str) -> LoadedVersion:
    uid = session.scalar(_LIVE_UID, {"key": key})
    if uid is None:
        raise NotFound(f"no process `{key}` is deployed")
    return load(session, uid=uid)
