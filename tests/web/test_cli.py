"""The `approval` command: validate, deploy, audit verify, db upgrade — as an operator uses them."""

import shutil
from pathlib import Path

from sqlalchemy import func, select, text

from engine.models import BundleVersion

ROOT = Path(__file__).resolve().parents[2]


def _copy_sample(tmp_path: Path) -> Path:
    shutil.copytree(
        ROOT / "processes" / "sample_approval", tmp_path / "processes" / "sample_approval"
    )
    return tmp_path / "processes" / "sample_approval"


def test_validate_accepts_the_shipped_processes(cli_runner):
    """`approval validate processes/` says ok for every shipped bundle and exits 0."""
    result = cli_runner("validate", str(ROOT / "processes"))
    assert result.exit_code == 0, result.output
    assert "ok: sample_approval" in result.output


def test_validate_prints_file_and_line_and_exits_1(cli_runner, tmp_path):
    """A broken flow is reported as `file:line: message` and the exit status is 1."""
    bundle = _copy_sample(tmp_path)
    diagram = bundle / "sample_approval.bpmn"
    diagram.write_text(
        diagram.read_text().replace('targetRef="Task_precheck"', 'targetRef="Task_gone"')
    )
    result = cli_runner("validate", str(bundle))
    assert result.exit_code == 1
    assert "processes/sample_approval/sample_approval.bpmn:" in result.output
    assert "goes to `Task_gone`, which does not exist" in result.output
    assert "Traceback" not in result.output


def test_deploy_creates_a_version_once_for_the_same_content(cli_runner, app):
    """Deploying twice gives v1 then "unchanged"; only one version is stored."""
    first = cli_runner("deploy", str(ROOT / "processes" / "sample_approval"))
    second = cli_runner("deploy", str(ROOT / "processes" / "sample_approval"))
    assert "sample_approval: deployed v1, live now" in first.output
    assert "sample_approval: unchanged, v1 stays live" in second.output
    with app.app_context():
        from web.extensions import db

        assert db.session.scalar(select(func.count()).select_from(BundleVersion)) == 1


def test_deploy_of_a_broken_bundle_stores_nothing(cli_runner, app, tmp_path):
    """A bundle with an error is refused with its problems, and nothing is deployed."""
    bundle = _copy_sample(tmp_path)
    (bundle / "approval_levels.dmn").write_text("<definitions>")
    result = cli_runner("deploy", str(bundle))
    assert result.exit_code == 1
    assert "processes/sample_approval/approval_levels.dmn:" in result.output
    with app.app_context():
        from web.extensions import db

        assert db.session.scalar(select(func.count()).select_from(BundleVersion)) == 0


def test_audit_verify_detects_an_edited_event(cli_runner, app):
    """After a deploy the log verifies; after a row is edited by hand `audit verify` exits 1."""
    cli_runner("deploy", str(ROOT / "processes" / "sample_approval"))
    assert cli_runner("audit", "verify").output.strip() == "audit log intact"
    with app.app_context():
        from web.extensions import db

        db.session.execute(text("UPDATE audit_events SET actor = 'mallory'"))
        db.session.commit()
    result = cli_runner("audit", "verify")
    assert result.exit_code == 1
    assert "was edited" in result.output


def test_db_upgrade_reports_the_revision(cli_runner):
    """`approval db upgrade` on a current database succeeds and says so."""
    result = cli_runner("db", "upgrade")
    assert result.exit_code == 0
    assert "database upgraded to head" in result.output
