"""Drivers for the shipped approval bundles (personal_loan, credit_card, enterprise_loan).

`Bank` is one bank with its staff, the real SMTP sink, an HTTP stub that is both the SMS gateway
and the credit bureau, and the bundles deployed. Every step runs in its own transaction and every
check reads the rows afresh, so a test proves what survives a restart between steps.
"""

from __future__ import annotations

import dataclasses
import shutil
from datetime import timedelta
from pathlib import Path
from typing import Any

from SpiffWorkflow.util.task import TaskState
from sqlalchemy import select

from engine import (
    audit,
    bundles,
    clock,
    directory,
    identifiers,
    inbox,
    runtime,
    service_calls,
    timers,
)
from engine.directory import Actor
from engine.errors import Invalid
from engine.models import BlacklistEntry, Notification, ProcessInstance, ServiceCall, User
from tests.factories import REPO, human_tasks, instance, open_task

OWNER = "owner"

#: username → (display name, groups); e-mail <username>@bank.example, applicants have a phone.
STAFF = {
    "rui": ("芮审核", ["credit_reviewer"]),
    "rong": ("荣审核", ["credit_reviewer"]),
    "su": ("苏主管", ["credit_supervisor"]),
    "feng": ("冯风险", ["risk_reviewer"]),
    "fan": ("范风险主管", ["risk_supervisor"]),
    "he": ("何合规", ["compliance_reviewer"]),
    "hou": ("侯合规主管", ["compliance_supervisor"]),
    "meng": ("孟行长", ["branch_manager"]),
    "wei": ("魏委员", ["credit_committee"]),
    "wu": ("吴委员", ["credit_committee"]),
    "ka": ("卡审核", ["card_center"]),
    "kai": ("凯审核", ["card_center"]),
    "owen": ("欧负责人", ["process_owner"]),
    # in two groups: may decide either level of an application, never both
    "shuang": ("双岗", ["credit_reviewer", "branch_manager"]),
    "kashuang": ("卡双岗", ["card_center", "branch_manager"]),
}
APPLICANTS = {"alice": ("张三", "13800138000"), "bob": ("李四", "13900139000")}
ALICE_MAIL = "alice@example.com"


def person(username: str) -> Actor:
    groups = STAFF[username][1] if username in STAFF else []
    return Actor(username, frozenset(groups))


def resident_id(birth: str = "19850315", sequence: str = "123") -> str:
    """A valid resident ID number (Beijing Dongcheng) born on `birth` (YYYYMMDD)."""
    first17 = f"110101{birth}{sequence}"
    return first17 + identifiers.resident_id_check_digit(first17)


def uscc(serial: str = "MA01ABCD1") -> str:
    """A valid unified social credit code of an enterprise (工商, Beijing Dongcheng)."""
    first17 = f"91110101{serial}"
    return first17 + identifiers.uscc_check_char(first17)


def birth_years_ago(years: int) -> str:
    """A birth date (YYYYMMDD) `years` years and a half ago: that age, whatever today is."""
    born = clock.now().date() - timedelta(days=round(365.25 * years + 180))
    return born.strftime("%Y%m%d")


def document(kind: str, name: str | None = None, **changes: Any) -> dict[str, Any]:
    return {
        "kind": kind,
        "name": name or f"{kind}.pdf",
        "sha256": "ab" * 32,
        "size": 200_000,
        "content_type": "application/pdf",
        **changes,
    }


#: The levels of every bundle in order, who decides each by default, and which set the terms.
LEVELS = ("review", "risk", "compliance", "manager", "committee")
DECIDERS = {
    "review": "rui",
    "risk": "feng",
    "compliance": "he",
    "manager": "meng",
    "committee": "wei",
}
SETS_TERMS = ("review", "manager", "committee")


def loan_application(**changes: Any) -> dict[str, Any]:
    """A complete personal loan application: 80,000 over 36 months, a grade-A profile."""
    return {
        "applicant_name": "张三",
        "id_number": resident_id("19850315"),
        "mobile": "13800138000",
        "amount": 80000,
        "term_months": 36,
        "purpose": "renovation",
        "employment_type": "employed",
        "employer": "北京某科技有限公司",
        "employment_years": 6,
        "monthly_income": 15000,
        "monthly_debt": 1000,
        "housing": "owned",
        "documents": [document("id_card"), document("income_proof")],
        "consent": True,
        **changes,
    }


def decision(prefix: str, choice: str = "approve", opinion: str = "", **terms: Any) -> dict:
    """A level's form: `<prefix>_decision`, `<prefix>_opinion` and any `<prefix>_<term>`."""
    data: dict[str, Any] = {f"{prefix}_decision": choice}
    if opinion or choice != "approve":
        data[f"{prefix}_opinion"] = opinion or f"{prefix} 意见：{choice}"
    data.update({f"{prefix}_{name}": value for name, value in terms.items()})
    return data


def field_errors(refused: Invalid) -> list[str]:
    """The fields an `Invalid` names, in the order it lists them."""
    return [error.field for error in refused.errors]


@dataclasses.dataclass
class Bureau:
    """What the credit bureau stub answers; `down` makes it answer 503."""

    score: int = 760
    overdue_accounts: int = 0
    total_debt: float = 0
    monthly_debt_payment: float = 0
    down: bool = False

    def report(self) -> dict[str, Any]:
        return {
            "score": self.score,
            "overdue_accounts": self.overdue_accounts,
            "total_debt": self.total_debt,
            "monthly_debt_payment": self.monthly_debt_payment,
        }


class Bank:
    """One bank: staff and applicants in the directory, the bundles deployed, the outside world
    stubbed by real local servers."""

    def __init__(
        self,
        session_factory,
        settings,
        smtp_server,
        http_stub,
        keys: list[str],
        *,
        terms: dict[str, Any],
        reviewer: str = "rui",
    ):
        #: the approved terms a deciding level gives unless a test says otherwise
        self.terms = terms
        self.deciders = {**DECIDERS, "review": reviewer}
        self.session_factory = session_factory
        self.smtp = smtp_server
        self.http = http_stub
        self.bureau = Bureau()
        self.settings = dataclasses.replace(
            settings,
            smtp_port=smtp_server.port,
            sms_url=http_stub.url + "/sms",
            credit_bureau_url=http_stub.url + "/bureau",
            http_timeout=2.0,
        )
        http_stub.respond = self._respond
        self._people()
        with session_factory.begin() as session:
            for key in keys:
                bundles.deploy_path(session, self.settings, REPO / "processes" / key, OWNER)

    def _respond(self, request) -> tuple[int, Any]:
        if request.path.startswith("/sms"):
            return 200, {"ok": True}
        if self.bureau.down:
            return 503, {"message": "maintenance"}
        return 200, self.bureau.report()

    def _people(self) -> None:
        with self.session_factory.begin() as session:
            for username, (name, phone) in APPLICANTS.items():
                user = directory.add_user(session, username, [], display_name=name)
                user.email, user.phone = f"{username}@example.com", phone
            for username, (name, groups) in STAFF.items():
                user = directory.add_user(session, username, groups, display_name=name)
                user.email = f"{username}@bank.example"

    # --- steps, each in its own transaction -----------------------------------------------------

    def start(self, key: str, applicant: str = "alice") -> int:
        """Open an application; the engine issues its number."""
        with self.session_factory.begin() as session:
            return runtime.start(session, self.settings, key, {}, person(applicant)).id

    def apply(self, key: str, form: dict[str, Any], applicant: str = "alice") -> int:
        """Start, submit the application form, and let the automatic pre-check run."""
        instance_id = self.start(key, applicant)
        self.decide(applicant, "Task_apply", form, instance_id)
        return instance_id

    def decide(self, who: str, element_id: str, data: dict, instance_id: int | None = None):
        """`who` completes their open task `element_id` (of `instance_id`), then services run."""
        task = self.task(who, element_id, instance_id)
        with self.session_factory.begin() as session:
            runtime.complete_task(session, self.settings, task.id, person(who), data)
        self.settle()

    def form(self, level: str, choice: str = "approve", opinion: str = "", **terms: Any) -> dict:
        """The decision form of `level`; an approval at a level that sets terms gives them."""
        if choice != "approve" or level not in SETS_TERMS:
            return decision(level, choice, opinion)
        return decision(level, choice, opinion, **{**self.terms, **terms})

    def level(
        self,
        level: str,
        choice: str = "approve",
        opinion: str = "",
        *,
        who: str | None = None,
        instance_id: int | None = None,
        **terms: Any,
    ) -> None:
        """`who` (the level's usual decider) decides `level`."""
        who = who or self.deciders[level]
        form = self.form(level, choice, opinion, **terms)
        self.decide(who, f"Task_{level}", form, instance_id)

    def reject_at(self, rejecting: str, opinion: str, **terms: Any) -> None:
        """Approve every level before `rejecting`, which rejects with `opinion`; a countersign
        department's rejection waits for the other department, who approves."""
        last = "compliance" if rejecting in ("risk", "compliance") else rejecting
        for name in LEVELS[: LEVELS.index(last) + 1]:
            if name == rejecting:
                self.level(name, "reject", opinion=opinion)
            else:
                self.level(name, **terms)

    def claim(self, who: str, element_id: str, instance_id: int | None = None) -> None:
        task = self.task(who, element_id, instance_id)
        with self.session_factory.begin() as session:
            inbox.claim(session, self.settings, task.id, person(who))

    def task(self, who: str, element_id: str, instance_id: int | None = None) -> inbox.TaskView:
        if instance_id is None:
            return open_task(self.session_factory, person(who), element_id)
        with self.session_factory() as session:
            found = [
                t
                for t in inbox.open_tasks(session, person(who), limit=500)
                if t.element_id == element_id and t.instance_id == instance_id
            ]
        assert len(found) == 1, found
        return found[0]

    def settle(self, rounds: int = 30) -> None:
        """Run service calls until none is left, waiting out retry back-offs on the clock."""
        for _ in range(rounds):
            if service_calls.run_due(self.session_factory, self.settings):
                continue
            with self.session_factory() as session:
                later = session.scalars(
                    select(ServiceCall.next_attempt_at).where(ServiceCall.status == "pending")
                ).all()
            if not later:
                return
            clock.travel(max(later) - clock.now() + timedelta(seconds=1))
        raise AssertionError("service calls are still pending")

    def after(self, **delta: float) -> int:
        """Move the clock on, fire the timers that fell due and run what they asked for."""
        clock.travel(timedelta(**delta))
        fired = timers.advance_due(self.session_factory, self.settings)
        self.settle()
        return fired

    def set_locale(self, username: str, locale: str) -> None:
        with self.session_factory.begin() as session:
            session.scalar(select(User).where(User.username == username)).locale = locale

    def blacklist(self, kind: str, value: str, reason: str = "欺诈记录 fraud") -> None:
        with self.session_factory.begin() as session:
            session.add(BlacklistEntry(kind=kind, value=value, reason=reason))

    # --- reading back ------------------------------------------------------------------------

    def row(self, instance_id: int) -> ProcessInstance:
        return instance(self.session_factory, instance_id)

    def data(self, instance_id: int) -> dict[str, Any]:
        """The process data as the latest step left it (the last task that ran or is ready)."""
        with self.session_factory() as session:
            workflow = runtime.load(session, self.settings, instance_id).workflow
            live = TaskState.READY | TaskState.STARTED | TaskState.COMPLETED
            latest = max(workflow.get_tasks(state=live), key=lambda t: t.last_state_change)
            return dict(latest.data)

    def open(self, instance_id: int) -> list[tuple[str, str | None]]:
        """(element id, group) of the instance's open tasks, in creation order."""
        return [
            (t.element_id, t.group_key)
            for t in human_tasks(self.session_factory, instance_id)
            if t.state in ("ready", "claimed")
        ]

    def history(self, instance_id: int) -> list[tuple[str, str, str | None]]:
        """(element id, state, completed by) of every task row of the instance."""
        return [
            (t.element_id, t.state, t.completed_by)
            for t in human_tasks(self.session_factory, instance_id)
        ]

    def end(self, instance_id: int) -> str | None:
        """The end event the application reached, None while it is open; never an error."""
        row = self.row(instance_id)
        assert row.status in ("waiting", "completed"), (row.status, row.error_message)
        with self.session_factory() as session:
            ends = [
                e.data.get("end")
                for e in audit.events_for_instance(session, instance_id)
                if e.kind == "completed"
            ]
        return ends[-1] if ends else None

    def reminded(self, instance_id: int, event: str) -> list[str]:
        """Who got the in-app message `event` (reminder, escalation…) of the instance."""
        with self.session_factory() as session:
            return list(
                session.scalars(
                    select(Notification.recipient)
                    .where(Notification.instance_id == instance_id)
                    .where(Notification.event == event, Notification.channel == "in_app")
                    .order_by(Notification.id)
                )
            )

    def audit_problems(self) -> list[str]:
        with self.session_factory() as session:
            return audit.verify(session, key=self.settings.secret_key)

    def mails(self, to: str) -> list[tuple[str, str]]:
        """(subject, body) of every e-mail that reached `to`, in arrival order."""
        return [(m["Subject"], m.get_content()) for m in self.smtp.messages if m["To"] == to]

    def subjects(self, to: str) -> list[str]:
        return [subject for subject, _ in self.mails(to)]

    def sms(self, phone: str) -> list[str]:
        return [
            r.json["text"]
            for r in self.http.requests
            if r.path.startswith("/sms") and r.json and r.json.get("to") == phone
        ]

    def bureau_queries(self) -> list[dict]:
        return [r.json for r in self.http.requests if r.path.startswith("/bureau")]


def bundle_copy(root: Path, key: str, file: str, *edits: tuple[str, str]) -> Path:
    """The bundle `key` copied under `root` (processes/ and forms/), with (old, new) edits made
    in `file`; returns `root`."""
    shutil.rmtree(root, ignore_errors=True)
    shutil.copytree(REPO / "processes" / key, root / "processes" / key)
    shutil.copytree(REPO / "forms" / key, root / "forms" / key)
    path = root / "processes" / key / file
    text = path.read_text(encoding="utf-8")
    for old, new in edits:
        assert text.count(old) == 1, old
        text = text.replace(old, new)
    path.write_text(text, encoding="utf-8")
    return root


def deploy_copy(bank: Bank, root: Path) -> bundles.DeployResult:
    """Deploy the one bundle under `root/processes/` with the forms of `root/forms/`."""
    settings = dataclasses.replace(bank.settings, forms_dir=root / "forms")
    with bank.session_factory.begin() as session:
        (result,) = bundles.deploy_path(session, settings, root / "processes", OWNER)
    return result
