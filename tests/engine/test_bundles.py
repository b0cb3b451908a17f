"""Deploying bundles: nothing is stored from a bundle with an error; versions follow content."""

from __future__ import annotations

import dataclasses
import shutil
from pathlib import Path

import pytest
from sqlalchemy import func, select

from engine import bundles
from engine.errors import Problem, ValidationFailed
from engine.models import AuditEvent, BundleFile, BundleVersion

REPO = Path(__file__).resolve().parent.parent.parent
KEY = "sample_approval"
BPMN = "sample_approval.bpmn"


def _copy(tmp_path: Path, key: str, edit: tuple[str, str] | None = None) -> Path:
    """The sample bundle copied as bundle `key` under tmp_path, with one (old, new) edit."""
    folder = tmp_path / "processes" / key
    shutil.copytree(REPO / "processes" / KEY, folder)
    shutil.copytree(REPO / "forms" / KEY, tmp_path / "forms" / key)
    if edit:
        text = (folder / BPMN).read_text(encoding="utf-8")
        assert text.count(edit[0]) == 1
        (folder / BPMN).write_text(text.replace(*edit), encoding="utf-8")
    return folder


def _rows(session) -> dict[str, int]:
    return {
        model.__name__: session.scalar(select(func.count()).select_from(model))
        for model in (BundleVersion, BundleFile, AuditEvent)
    }


def _from(settings, tmp_path: Path):
    return dataclasses.replace(settings, forms_dir=tmp_path / "forms")


BROKEN = ('targetRef="Task_precheck"', 'targetRef="Task_9"')


def test_a_bundle_with_an_error_is_refused_and_nothing_is_stored(tmp_path, session, settings):
    """ValidationFailed lists the problem as file:line: message [id]; no row is written."""
    folder = _copy(tmp_path, KEY, BROKEN)
    with pytest.raises(ValidationFailed) as refused:
        bundles.deploy_path(session, _from(settings, tmp_path), folder, "analyst")
    assert refused.value.problems == [
        Problem(
            f"processes/{KEY}/{BPMN}",
            128,
            "sequence flow Flow_apply_precheck goes to `Task_9`, which does not exist",
            "Flow_apply_precheck",
        )
    ]
    assert str(refused.value) == (
        f"processes/{KEY}/{BPMN}:128: sequence flow Flow_apply_precheck goes to `Task_9`, "
        "which does not exist [Flow_apply_precheck]"
    )
    assert _rows(session) == {"BundleVersion": 0, "BundleFile": 0, "AuditEvent": 0}


def test_one_bad_bundle_stops_the_deploy_of_all(tmp_path, session, settings):
    """Deploying processes/ with one good and one bad bundle deploys neither."""
    _copy(tmp_path, KEY)
    _copy(tmp_path, "broken_loan", BROKEN)
    with pytest.raises(ValidationFailed) as refused:
        bundles.deploy_path(session, _from(settings, tmp_path), tmp_path / "processes", "analyst")
    assert {p.file for p in refused.value.problems} == {f"processes/broken_loan/{BPMN}"}
    assert _rows(session) == {"BundleVersion": 0, "BundleFile": 0, "AuditEvent": 0}


def test_a_first_deploy_stores_version_1_with_its_files_and_an_audit_event(session, settings):
    """The sample from the repository becomes version 1."""
    [result] = bundles.deploy_path(session, settings, settings.processes_dir / KEY, "analyst")
    assert (result.key, result.version, result.created, result.same_as_version) == (
        KEY,
        1,
        True,
        None,
    )
    assert _rows(session) == {"BundleVersion": 1, "BundleFile": 6, "AuditEvent": 1}


def test_deploying_identical_content_again_makes_no_new_version(session, settings):
    """The second deploy answers `created=False` and stores nothing."""
    bundles.deploy_path(session, settings, settings.processes_dir / KEY, "analyst")
    [again] = bundles.deploy_path(session, settings, settings.processes_dir / KEY, "analyst")
    assert (again.version, again.created) == (1, False)
    assert _rows(session) == {"BundleVersion": 1, "BundleFile": 6, "AuditEvent": 1}


def test_changed_content_is_version_2_and_a_rollback_is_version_3(tmp_path, session, settings):
    """Deploying v1's content after v2 is a new version that records it equals version 1."""
    [first] = bundles.deploy_path(session, settings, settings.processes_dir / KEY, "analyst")
    renamed = ('name="人工审核 Credit review"', 'name="人工审核 Credit check"')
    changed = _copy(tmp_path, KEY, renamed)
    [second] = bundles.deploy_path(session, _from(settings, tmp_path), changed, "analyst")
    [rollback] = bundles.deploy_path(session, settings, settings.processes_dir / KEY, "analyst")
    assert [(r.version, r.created, r.same_as_version) for r in (first, second, rollback)] == [
        (1, True, None),
        (2, True, None),
        (3, True, 1),
    ]
    v1, v2, v3 = session.scalars(select(BundleVersion).order_by(BundleVersion.version)).all()
    assert v1.checksum == v3.checksum != v2.checksum
    assert bundles.live_version(session, KEY).version == 3


def test_a_warning_does_not_stop_a_deploy_and_is_returned(tmp_path, session, settings):
    """A documentation-only pool deploys, and the deploy says it will never run."""
    edit = (
        "  <bpmndi:BPMNDiagram",
        '  <bpmn:process id="Notes" isExecutable="false" />\n  <bpmndi:BPMNDiagram',
    )
    folder = _copy(tmp_path, KEY, edit)
    [result] = bundles.deploy_path(session, _from(settings, tmp_path), folder, "analyst")
    assert result.created
    assert [(w.element_id, w.severity) for w in result.warnings] == [("Notes", "warning")]


def test_a_missing_folder_is_a_problem_not_a_traceback(tmp_path, session, settings):
    """The CLI prints `path: the folder does not exist` instead of a FileNotFoundError."""
    with pytest.raises(ValidationFailed) as refused:
        bundles.check(session, settings, tmp_path / "nowhere")
    assert refused.value.problems == [
        Problem(str(tmp_path / "nowhere"), None, "the folder does not exist")
    ]


def test_a_folder_with_no_bundle_is_a_problem(tmp_path, session, settings):
    """An empty processes/ folder is reported, not deployed as nothing."""
    with pytest.raises(ValidationFailed) as refused:
        bundles.deploy_path(session, settings, tmp_path, "analyst")
    assert [p.message for p in refused.value.problems] == [
        "no bundle here: expected .bpmn files, or bundle folders such as personal_loan/"
    ]
