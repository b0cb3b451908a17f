"""Access control as a matrix: every route × every kind of person × someone else's object.

Decision: one table (`MATRIX`) names, for each route of the app (read from `app.url_map`, so a
new route fails `test_every_route_is_in_the_matrix_or_public` until it is added here or to the
commented `PUBLIC` list), what each role gets: served (OK), sent to sign in (LOGIN), 401 (the
API without a token), 403 (the wrong audience: staff on applicant pages, applicants on staff
pages) or HIDDEN — 404, the very answer a nonexistent id gets, so ids cannot be probed. Every
(route, role) is its own test; a refused POST must leave the records (and the work queue) as
they were, and a list must not show someone else's application.

The scenario (applicant amy's applications with her documents, an in-app message, a task of her
own, review tasks) is built once per database backend through the engine and copied for each
test (a file copy on SQLite, `CREATE DATABASE … TEMPLATE` on PostgreSQL), which keeps the 250
cases within some 15 seconds on SQLite. CSRF is off on this app: the areas' own tests cover it.
"""

from __future__ import annotations

import dataclasses
import os
import shutil
import threading
import uuid
from concurrent.futures import ThreadPoolExecutor
from http.server import ThreadingHTTPServer
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from sqlalchemy import create_engine, delete, func, select, text
from sqlalchemy.engine import make_url

from engine import api_tokens, applications, bundles, dispatch, documents, inbox, jobs, runtime
from engine import schema as db_schema
from engine.config import Settings
from engine.db import make_engine, make_session_factory
from engine.directory import Actor, add_user
from engine.models import (
    AuditEvent,
    Document,
    Group,
    HumanTask,
    LoginCode,
    Membership,
    Notification,
    ProcessInstance,
    User,
)
from tests.conftest import BACKENDS, POSTGRES_URL
from tests.engine.test_personal_loan import application
from tests.factories import application as sample_application
from tests.factories import review as sample_review
from tests.stubs import HttpStub, _free_port, _handler, _Sink

# --- who ---------------------------------------------------------------------------------------

#: role → (username, groups). `manager` is asked before any branch-manager level exists.
ROLES = {
    "anon": None,
    "owner": ("amy", []),
    "other": ("ben", []),
    "reviewer": ("rui", ["credit_reviewer"]),
    "outsider": ("cat", ["card_center"]),
    "manager": ("meng", ["branch_manager"]),
}
#: rong is the colleague a task is transferred to.
EXTRA_PEOPLE = {"rong": ["credit_reviewer"]}
RUI = Actor("rui", frozenset({"credit_reviewer"}))
PDF = b"%PDF-1.4\n1 0 obj<</Type/Catalog>>endobj\ntrailer<</Root 1 0 R>>\n%%EOF\n"
#: rui's credit review of amy's personal loan: approved as asked, 80,000 over 36 months.
APPROVE = {"review_decision": "approve", "review_amount": 80000, "review_term_months": 36}
#: Ids and a number that exist for nobody: what "someone else's" must look like.
GHOST = 987_654
GHOST_REFERENCE = "PL20991231999999"

# --- what they get -----------------------------------------------------------------------------

OK, LOGIN, E401, E403, HIDDEN = "ok", "login", "401", "403", "hidden"
#: A visitor without credentials: sent to sign in on a page, 401 from the API.
ANON = "anon"
STAFF_ROLES = ("reviewer", "outsider", "manager")


def applicant_area(other: str = OK) -> dict[str, str]:
    """Applicants only; `other` is what another applicant gets (HIDDEN for amy's objects)."""
    return {"anon": ANON, "owner": OK, "other": other, **dict.fromkeys(STAFF_ROLES, E403)}


def staff_area(outsiders: str = OK) -> dict[str, str]:
    """Staff only; `outsiders` is what staff whose groups never touched the task get."""
    return {"anon": ANON, "owner": E403, "other": E403, "reviewer": OK,
            "outsider": outsiders, "manager": outsiders}  # fmt: skip


def application_readers(reviewer: str = OK) -> dict[str, str]:
    """Amy's application: amy and the credit reviewers; nobody else knows it exists."""
    return {"anon": ANON, "owner": OK, "other": HIDDEN, "reviewer": reviewer,
            "outsider": HIDDEN, "manager": HIDDEN}  # fmt: skip


def everyone_signed_in() -> dict[str, str]:
    """Pages about the signed-in person only (their messages, their security settings)."""
    return {"anon": ANON, **dict.fromkeys(("owner", "other", *STAFF_ROLES), OK)}


def only_owner() -> dict[str, str]:
    """Amy's own thing that even staff have no business with (her message, her draft upload)."""
    return {"anon": ANON, "owner": OK, "other": HIDDEN, **dict.fromkeys(STAFF_ROLES, HIDDEN)}


@dataclasses.dataclass(frozen=True)
class Row:
    """One route with one object: the path (a template over the scenario's ids), what each role
    gets, the statuses that mean "served", the body of a POST, and which served roles change the
    records (None: do not compare, e.g. sign-out writes a sign-in audit row)."""

    endpoint: str
    method: str
    path: str
    expect: dict[str, str]
    ok: tuple[int, ...] = (200,)
    body: dict[str, Any] | None = None
    changes: frozenset[str] | None = frozenset()
    #: list pages: whether amy's first application (its number) must appear, per served role
    shows: dict[str, bool] = dataclasses.field(default_factory=dict)
    #: the object whose number a list shows (or must not show)
    listed: str = "p1_ref"
    variant: str = ""

    @property
    def api(self) -> bool:
        return self.path.startswith("/api/")

    @property
    def id(self) -> str:
        return f"{self.method} {self.endpoint}" + (f"[{self.variant}]" if self.variant else "")


REDIRECT = (302, 303)
#: Lists: whether amy's application (its number) appears, per served role.
INBOX_LIST = {"reviewer": True, "outsider": False, "manager": False}
APPLICANT_LIST = {"owner": True, "other": False}
ONLY_AMY = {"owner": True, "other": False, "reviewer": False, "outsider": False, "manager": False}
#: The sample review's decision form, as the page posts it.
REVIEW_FORM = {"decision": "approve", "opinion": "资料齐全"}
NEW_LOAN = "/applications/new/personal_loan"
MINE = frozenset({"owner"})
REVIEWER = frozenset({"reviewer"})

# Objects: p1 amy's sample application in credit review (review_task), p2 her personal loan
# waiting for her signature (sign_task, her document, her message), claimed_task ben's review
# task held by rui, draft_document amy's upload never submitted.
# fmt: off
MATRIX = [
    # --- the applicant portal (web/apply) ---
    Row("apply.index", "GET", "/applications/", applicant_area()),
    Row("apply.mine", "GET", "/applications/mine", applicant_area(), shows=APPLICANT_LIST),
    Row("apply.new", "GET", NEW_LOAN, applicant_area()),
    # an empty form or draft reaches the view and is sent back with its errors (422)
    Row("apply.fill", "POST", NEW_LOAN, applicant_area(), ok=(422,)),
    Row("apply.confirm", "GET", NEW_LOAN + "/confirm", applicant_area(), ok=(302,)),
    Row("apply.submit", "POST", NEW_LOAN + "/submit", applicant_area(), ok=(422,)),
    Row("apply.submitted", "GET", "/applications/{p1}/submitted", applicant_area(HIDDEN)),
    Row("apply.task", "GET", "/applications/{p2}/task/{sign_task}", applicant_area(HIDDEN)),
    # amy's own task page for the reviewers' task of her application: not hers to open
    Row("apply.task", "GET", "/applications/{p1}/task/{review_task}",
        {**applicant_area(HIDDEN), "owner": HIDDEN}, variant="review task"),
    # the signature without a code reaches the view and is refused (422)
    Row("apply.complete", "POST", "/applications/{p2}/task/{sign_task}", applicant_area(HIDDEN),
        ok=(422,)),
    # no SMS gateway in these settings: the view says so and goes back to the task (303)
    Row("apply.send_code", "POST", "/applications/{p2}/task/{sign_task}/code",
        applicant_area(HIDDEN), ok=(303,)),
    Row("apply.withdraw", "POST", "/applications/{p1}/withdraw", applicant_area(HIDDEN),
        ok=(303,), changes=MINE),
    Row("apply.document", "GET", "/applications/documents/{document}", application_readers()),
    Row("apply.document", "GET", "/applications/documents/{draft_document}", only_owner(),
        variant="not yet submitted"),
    # --- progress and messages (web/track) ---
    Row("track.lookup", "GET", "/track/", everyone_signed_in()),
    Row("track.detail", "GET", "/track/{p1_ref}", application_readers()),
    Row("track.diagram", "GET", "/track/{p1_ref}/diagram.bpmn", application_readers()),
    Row("track.messages", "GET", "/track/messages", everyone_signed_in(), listed="p2_ref",
        shows=ONLY_AMY),
    Row("track.read", "POST", "/track/messages/{message}/read", only_owner(), ok=(302,),
        changes=MINE),
    Row("track.read_all", "POST", "/track/messages/read", everyone_signed_in(), ok=(302,),
        changes=MINE),
    # --- the reviewers' inbox (web/inbox) ---
    Row("inbox.index", "GET", "/inbox/", staff_area(), shows=INBOX_LIST),
    Row("inbox.task", "GET", "/inbox/tasks/{review_task}", staff_area(HIDDEN)),
    Row("inbox.claim", "POST", "/inbox/tasks/{review_task}/claim", staff_area(HIDDEN),
        ok=(302,), changes=REVIEWER),
    Row("inbox.release", "POST", "/inbox/tasks/{claimed_task}/release", staff_area(HIDDEN),
        ok=(302,), changes=REVIEWER),
    Row("inbox.transfer", "POST", "/inbox/tasks/{claimed_task}/transfer", staff_area(HIDDEN),
        ok=(302,), body={"to": "rong"}, changes=REVIEWER),
    Row("inbox.complete", "POST", "/inbox/tasks/{review_task}/complete", staff_area(HIDDEN),
        ok=(302,), body=REVIEW_FORM, changes=REVIEWER),
    # --- the person's own account (web/auth) ---
    Row("auth.security", "GET", "/auth/security", everyone_signed_in()),
    Row("auth.security", "POST", "/auth/security", everyone_signed_in()),
    Row("auth.logout", "GET", "/auth/logout", everyone_signed_in()),
    # signing out writes a sign-in audit record: not compared
    Row("auth.logout", "POST", "/auth/logout", everyone_signed_in(), ok=(302,), changes=None),
    # --- the JSON API (web/api): a bearer token each, 401 without ---
    Row("api.types", "GET", "/api/types", everyone_signed_in()),
    Row("api.form", "GET", "/api/types/personal_loan/form", everyone_signed_in()),
    Row("api.apply", "POST", "/api/applications", applicant_area(), ok=(422,),
        body={"type": "personal_loan", "data": {}}),
    Row("api.mine", "GET", "/api/applications", everyone_signed_in(), shows=ONLY_AMY),
    Row("api.application", "GET", "/api/applications/{p1_ref}", application_readers()),
    # staff are refused by ownership (404), not by audience: nothing is shown either way
    Row("api.withdraw", "POST", "/api/applications/{p1_ref}/withdraw",
        application_readers(reviewer=HIDDEN), changes=MINE),
    Row("api.tasks", "GET", "/api/tasks", staff_area(), shows=INBOX_LIST),
    Row("api.task", "GET", "/api/tasks/{review_task}", staff_area(HIDDEN)),
    Row("api.claim", "POST", "/api/tasks/{review_task}/claim", staff_area(HIDDEN),
        changes=REVIEWER),
    Row("api.release", "POST", "/api/tasks/{claimed_task}/release", staff_area(HIDDEN),
        changes=REVIEWER),
    Row("api.complete", "POST", "/api/tasks/{review_task}/complete",
        staff_area(HIDDEN), body={"data": sample_review()}, changes=REVIEWER),
    # the signature without a code reaches the engine and is refused (422), as on the page
    Row("api.complete_my_task", "POST", "/api/applications/{p2_ref}/tasks/{sign_task}/complete",
        applicant_area(HIDDEN), ok=(422,), body={"data": {}},
        changes=None),
]
# fmt: on

#: Routes anybody may use: the entrance, the sign-in and registration flow, and static files.
PUBLIC = {
    ("static", "GET"),  # stylesheet and scripts
    ("home.index", "GET"),  # the start page (sends signed-in people to their area)
    ("home.health", "GET"),  # the load balancer's probe
    ("i18n.switch", "GET"),  # /lang/<code>: the language switch
    ("auth.login", "GET"),
    ("auth.login", "POST"),
    ("auth.register", "GET"),
    ("auth.register", "POST"),
    ("auth.captcha", "GET"),  # the captcha image of the sign-in form
    ("auth.second_factor", "GET"),  # between password and code: the session says who
    ("auth.second_factor", "POST"),
}

OUTSIDERS = ("outsider", "manager")
APPLICANTS = ("owner", "other")
UNKNOWN = "where an unknown id answers 404, so task ids can be probed"


def _holes(row_id: str, roles: tuple[str, ...], reason: str) -> dict[tuple[str, str], str]:
    return {(row_id, role): reason for role in roles}


#: Known holes: (row id, role) → what leaks. Each is an expected failure (strict) until fixed;
#: then its entry must go. (The last ones, fixed by engine.permissions.must_see_task: staff of
#: other groups learned from a claim/release/transfer/complete refusal that a task existed.)
HOLES: dict[tuple[str, str], str] = {}


def cases() -> list:
    """Every (row, role) of the matrix as its own test, known holes marked."""
    found = []
    for row in MATRIX:
        for role in ROLES:
            hole = HOLES.get((row.id, role))
            marks = [pytest.mark.xfail(strict=True, reason=hole)] if hole else []
            found.append(pytest.param(row, role, id=f"{row.id}-{role}", marks=marks))
    return found


# --- the scenario, built once per backend ------------------------------------------------------


@dataclasses.dataclass
class World:
    backend: str
    settings: Settings
    #: the SQLite file or the PostgreSQL template database every test copies
    source: str
    objects: dict[str, Any]
    tokens: dict[str, str]
    #: PostgreSQL: drops each test's copy in the background while the next test runs
    dropper: ThreadPoolExecutor | None = None

    def ghosts(self) -> dict[str, Any]:
        """The same names, pointing at nothing."""
        return {k: GHOST_REFERENCE if k.endswith("_ref") else GHOST for k in self.objects}


def _settings(instance: str, url: str) -> Settings:
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    return Settings.from_env(
        {
            "APPROVAL_INSTANCE_DIR": instance,
            "APPROVAL_DATABASE_URL": url,
            "APPROVAL_SECRET_KEY": "test-secret-key-" + "x" * 32,
            "APPROVAL_PROCESSES_DIR": os.path.join(root, "processes"),
            "APPROVAL_FORMS_DIR": os.path.join(root, "forms"),
        }
    )


class Outside:
    """The SMTP sink and the HTTP stub (SMS gateway and credit bureau) while the scenario runs."""

    def __enter__(self):
        self.smtp = _Sink()
        self.smtp.port = _free_port()
        self.controller = Controller(self.smtp, hostname="127.0.0.1", port=self.smtp.port)
        self.controller.start()
        report = {"score": 760, "overdue_accounts": 0, "total_debt": 0, "monthly_debt_payment": 0}
        self.http = HttpStub(lambda r: (200, {"ok": True} if r.path.startswith("/sms") else report))
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(self.http))
        self.http.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    def serving(self, settings: Settings) -> Settings:
        return dataclasses.replace(
            settings,
            smtp_port=self.smtp.port,
            sms_url=self.http.url + "/sms",
            credit_bureau_url=self.http.url + "/bureau",
            http_timeout=2.0,
        )

    def __exit__(self, *exc):
        self.server.shutdown()
        self.server.server_close()
        self.controller.stop()


def _personal_loan(sessions, settings) -> int:
    """Amy applies for a personal loan with two documents of her own; the instance id."""
    with sessions.begin() as session:
        docs = [
            documents.store(session, settings, "amy", kind, f"{kind}.pdf", PDF + kind.encode())
            for kind in ("id_card", "income_proof")
        ]
        data = application(documents=[documents.as_field(d) for d in docs])
        return applications.submit(
            session, settings, "personal_loan", data, Actor("amy"), defer=True
        ).id


def _sample(sessions, settings, applicant: str) -> int:
    """A sample application of 80,000: a credit review, then (later) the branch manager."""
    with sessions.begin() as session:
        return applications.submit(
            session, settings, "sample_approval", sample_application(), Actor(applicant),
            defer=True,
        ).id  # fmt: skip


def _open_task(session, instance_id: int, element_id: str) -> int:
    return session.scalar(
        select(HumanTask.id).where(
            HumanTask.instance_id == instance_id,
            HumanTask.element_id == element_id,
            HumanTask.state.in_(("ready", "claimed")),
        )
    )


def _people(session) -> dict[str, str]:
    """Everybody, and an API token for each role; role → secret."""
    tokens = {}
    for role, who in ROLES.items():
        if who is None:
            continue
        username, groups = who
        user = add_user(session, username, groups, display_name=username.title())
        user.phone, user.email = "13800138000", f"{username}@example.com"
        tokens[role] = api_tokens.issue(session, username, "matrix")
    for username, groups in EXTRA_PEOPLE.items():
        add_user(session, username, groups)
    return tokens


def build(settings: Settings) -> tuple[dict[str, Any], dict[str, str]]:
    """P1, amy's sample application, waits for the credit review (the branch manager's level
    comes later); P2, amy's personal loan with her documents and in-app messages, was approved
    by rui and waits for her signature; P3, ben's, has its review claimed by rui; and amy has a
    document uploaded but never submitted."""
    engine = make_engine(settings.database_url)
    sessions = make_session_factory(engine)
    queue = jobs.LocalQueue()
    previous = dispatch.install(queue)
    try:
        with sessions.begin() as session:
            bundles.deploy_path(session, settings, settings.processes_dir, "test")
            tokens = _people(session)
        p1, p3 = _sample(sessions, settings, "amy"), _sample(sessions, settings, "ben")
        p2 = _personal_loan(sessions, settings)
        queue.drain(sessions, settings)
        with sessions.begin() as session:
            review = _open_task(session, p2, "Task_review")
            runtime.complete_task(session, settings, review, RUI, APPROVE, defer=True)
            inbox.claim(session, settings, _open_task(session, p3, "Task_review"), RUI)
        queue.drain(sessions, settings)
        with sessions.begin() as session:
            draft = documents.store(session, settings, "amy", "id_card", "draft.pdf", PDF + b"%d")
            objects = _objects(session, p1, p2, p3, draft.id)
    finally:
        dispatch.install(previous)
        engine.dispose()
    return objects, tokens


def _objects(session, p1: int, p2: int, p3: int, draft: int) -> dict[str, Any]:
    message = session.scalar(
        select(func.min(Notification.id)).where(
            Notification.instance_id == p2,
            Notification.channel == "in_app",
            Notification.recipient == "amy",
            Notification.status == "sent",
        )
    )
    objects = {
        "p1": p1,
        "p2": p2,
        "p1_ref": session.get(ProcessInstance, p1).reference,
        "p2_ref": session.get(ProcessInstance, p2).reference,
        "review_task": _open_task(session, p1, "Task_review"),
        "claimed_task": _open_task(session, p3, "Task_review"),
        "sign_task": _open_task(session, p2, "Task_sign_contract"),
        "document": session.scalar(select(func.min(Document.id)).where(Document.instance_id == p2)),
        "done_task": session.scalar(
            select(HumanTask.id).where(
                HumanTask.instance_id == p2, HumanTask.element_id == "Task_review"
            )
        ),
        "draft_document": draft,
        "message": message,
    }
    assert None not in objects.values(), objects
    return objects


def _postgres_template() -> tuple[str, str]:
    admin = make_url(POSTGRES_URL)
    name = f"approval_matrix_{uuid.uuid4().hex[:10]}"
    _admin_sql(f'CREATE DATABASE "{name}"')
    url = admin.set(database=name).render_as_string(hide_password=False)
    db_schema.upgrade(url)
    return name, url


def _admin_sql(statement: str) -> None:
    admin = create_engine(make_url(POSTGRES_URL), isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.execute(text(statement))
    finally:
        admin.dispose()


@pytest.fixture(scope="module", params=BACKENDS)
def world(request, tmp_path_factory):
    instance = str(tmp_path_factory.mktemp("matrix") / "instance")
    if request.param == "sqlite":
        source = str(tmp_path_factory.mktemp("matrix-db") / "world.db")
        shutil.copy(request.getfixturevalue("sqlite_template"), source)
        url = f"sqlite:///{source}"
    else:
        source, url = _postgres_template()
    settings = _settings(instance, url)
    try:
        with Outside() as outside:
            objects, tokens = build(outside.serving(settings))
    except BaseException:
        if request.param != "sqlite":
            _admin_sql(f'DROP DATABASE "{source}" WITH (FORCE)')
        raise
    # during the tests nothing may leave the machine: no SMS gateway, no bureau
    quiet = dataclasses.replace(settings, sms_url="")
    dropper = ThreadPoolExecutor(1) if request.param != "sqlite" else None
    yield World(request.param, quiet, source, objects, tokens, dropper)
    if dropper is not None:
        dropper.shutdown(wait=True)
        _admin_sql(f'DROP DATABASE "{source}" WITH (FORCE)')


@pytest.fixture
def db_url(world, tmp_path):
    """A fresh copy of the scenario for this test."""
    if world.backend == "sqlite":
        path = tmp_path / "test.db"
        shutil.copy(world.source, path)
        yield f"sqlite:///{path}"
        return
    name = f"{world.source}_{uuid.uuid4().hex[:8]}"
    _admin_sql(f'CREATE DATABASE "{name}" TEMPLATE "{world.source}"')
    yield make_url(POSTGRES_URL).set(database=name).render_as_string(hide_password=False)
    world.dropper.submit(_admin_sql, f'DROP DATABASE "{name}" WITH (FORCE)')


@pytest.fixture
def settings(world, db_url):
    return dataclasses.replace(world.settings, database_url=db_url)


@pytest.fixture
def app(settings):
    from web import create_app
    from web.extensions import db

    app = create_app(settings)
    app.config["WTF_CSRF_ENABLED"] = False
    yield app
    with app.app_context():
        db.engine.dispose()


# --- asking ------------------------------------------------------------------------------------


def ask(client, sign_in, world: World, row: Row, role: str, objects: dict[str, Any]):
    """`role` sends the row's request about `objects` (amy's, or the ghosts)."""
    path = row.path.format(**objects)
    if row.api:
        headers = {"Authorization": f"Bearer {world.tokens[role]}"} if role != "anon" else {}
        body = {"json": row.body} if row.body is not None else {}
        return client.open(path, method=row.method, headers=headers, **body)
    with client.session_transaction() as session:
        session.clear()
    if role != "anon":
        sign_in(ROLES[role][0])
    return client.open(path, method=row.method, data=row.body or {})


def records(session_factory) -> tuple:
    """What a request may change: instances, tasks, documents, messages, codes, audit."""
    with session_factory() as session:
        return (
            *(
                session.execute(select(*columns).order_by(columns[0])).all()
                for columns in (
                    (ProcessInstance.id, ProcessInstance.status),
                    (HumanTask.id, HumanTask.state, HumanTask.assignee, HumanTask.completed_by),
                    (Document.id, Document.instance_id),
                    (Notification.id, Notification.read_at),
                    (LoginCode.id, LoginCode.used_at),
                )
            ),
            session.scalar(select(func.count()).where(AuditEvent.instance_id.is_not(None))),
        )


def _outcome(answer) -> str:
    where = answer.headers.get("Location", "")
    if answer.status_code == 302 and "/auth/login" in where:
        return LOGIN
    return {401: E401, 403: E403, 404: HIDDEN}.get(answer.status_code, OK)


def _answer(response) -> tuple[int, str]:
    """Status and where it sends (without the query: sign-in names the page asked for)."""
    return response.status_code, response.headers.get("Location", "").split("?")[0]


def _check_served(row: Row, role: str, answer, world: World) -> None:
    assert answer.status_code in row.ok, (answer.status_code, answer.get_data(as_text=True)[:300])
    if role in row.shows:
        listed = world.objects[row.listed] in answer.get_data(as_text=True)
        assert listed == row.shows[role], f"amy's application listed: {listed}"


@pytest.mark.parametrize(("row", "role"), cases())
def test_route_answers_each_role_as_the_matrix_says(
    row, role, client, sign_in, world, session_factory, work
):
    """Served, sign in, 401, 403, or 404 exactly like a nonexistent id; refusals change nothing."""
    before = records(session_factory)
    answer = ask(client, sign_in, world, row, role, world.objects)
    expected = row.expect[role]
    expected = (E401 if row.api else LOGIN) if expected == ANON else expected
    assert _outcome(answer) == expected, (answer.status_code, answer.headers.get("Location"))
    if expected == OK:
        _check_served(row, role, answer, world)
    if expected != OK:  # a refusal tells nothing: the same answer as for ids that do not exist
        ghost = ask(client, sign_in, world, row, role, world.ghosts())
        assert _answer(ghost) == _answer(answer), "someone else's object answers differently"
    if row.changes is None and expected == OK:
        return
    changed = records(session_factory) != before
    assert changed == (expected == OK and role in row.changes), "records changed: " + str(changed)
    if not changed:
        assert work.pending == [], "a refused request published background work"


# --- the table itself --------------------------------------------------------------------------


def test_every_route_is_in_the_matrix_or_public(app, world):
    """A route added to the app fails here until the matrix (or the public list) names it."""
    served = {
        (rule.endpoint, method)
        for rule in app.url_map.iter_rules()
        for method in rule.methods - {"HEAD", "OPTIONS"}
    }
    covered = {(row.endpoint, row.method) for row in MATRIX}
    assert served - covered - PUBLIC == set(), "routes missing from the access matrix"
    assert (covered | PUBLIC) - served == set(), "the matrix names routes the app does not have"
    assert covered & PUBLIC == set()


def test_every_row_of_the_matrix_reaches_its_route_and_names_every_role(app, world):
    """The paths in the table resolve to the endpoint they claim (no typo tests a 404 page)."""
    urls = app.url_map.bind("localhost")
    for row in MATRIX:
        for objects in (world.objects, world.ghosts()):
            endpoint, _ = urls.match(row.path.format(**objects), method=row.method)
            assert endpoint == row.endpoint, row.id
        assert set(row.expect) == set(ROLES), row.id


def test_public_routes_answer_a_visitor(client):
    """The allow-listed pages open without signing in (the second factor page, with nobody
    half signed in, and the language switch send the visitor on, never to a refusal)."""
    for path in ("/", "/healthz", "/auth/login", "/auth/register", "/auth/captcha.png",
                 "/static/app.css"):  # fmt: skip
        assert client.get(path).status_code == 200, path
    for path in ("/lang/en", "/auth/second-factor"):
        assert client.get(path).status_code in REDIRECT, path


# --- beyond the matrix: what changes who sees what ---------------------------------------------


def _move(session_factory, username: str, leaves: str, joins: str) -> None:
    """An administrator moves `username` from group `leaves` to group `joins`."""
    with session_factory.begin() as session:
        user = session.scalar(select(User).where(User.username == username))
        group_id = {g.key: g.id for g in session.scalars(select(Group))}
        session.execute(
            delete(Membership).where(
                Membership.user_id == user.id, Membership.group_id == group_id[leaves]
            )
        )
        session.add(Membership(user_id=user.id, group_id=group_id[joins]))


def test_a_reviewer_still_sees_what_they_decided_after_leaving_the_group(
    client, sign_in, world, session_factory
):
    """rui decided amy's personal loan, then moved to the card centre: he still reads that
    application, its documents and his decision's task, but no longer her application in
    credit review."""
    _move(session_factory, "rui", leaves="credit_reviewer", joins="card_center")
    sign_in("rui")
    o = world.objects
    assert client.get(f"/track/{o['p2_ref']}").status_code == 200
    assert client.get(f"/applications/documents/{o['document']}").status_code == 200
    assert client.get(f"/inbox/tasks/{o['done_task']}").status_code == 200
    assert client.get(f"/track/{o['p1_ref']}").status_code == 404
    assert client.get(f"/inbox/tasks/{o['review_task']}").status_code == 404
    assert o["p1_ref"] not in client.get("/inbox/").get_data(as_text=True)


def test_the_branch_manager_sees_the_application_once_their_level_exists(
    client, sign_in, world, session_factory, settings, work
):
    """404 before (the matrix); once rui approves amy's 80,000, meng has the next level and
    reads the application, its progress and its task."""
    o = world.objects
    with session_factory.begin() as session:
        runtime.complete_task(session, settings, o["review_task"], RUI, sample_review(), defer=True)
    work.drain()
    with session_factory() as session:
        level = _open_task(session, o["p1"], "Task_manager")
    sign_in("meng")
    assert o["p1_ref"] in client.get("/inbox/").get_data(as_text=True)
    assert client.get(f"/inbox/tasks/{level}").status_code == 200
    assert client.get(f"/track/{o['p1_ref']}").status_code == 200


def test_the_loan_contract_is_not_signed_through_the_api_without_a_second_factor(
    client, world, session_factory
):
    """On the page a signature needs amy's SMS or app code; the API must not take one without."""
    signature = {"accept_terms": True, "signer_name": "张三",
                 "disbursement_account": "6222020200112233445"}  # fmt: skip
    answer = client.post(
        f"/api/tasks/{world.objects['sign_task']}/complete",
        headers={"Authorization": f"Bearer {world.tokens['owner']}"},
        json={"data": signature},
    )
    with session_factory() as session:
        task = session.get(HumanTask, world.objects["sign_task"])
    assert (answer.status_code, task.state) in {(403, "ready"), (422, "ready")}
