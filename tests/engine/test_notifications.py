"""Notifications reach a real SMTP sink, a real SMS gateway stub and the inbox, each only once."""

from __future__ import annotations

import dataclasses
import socket
from datetime import timedelta

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult

from engine import clock, directory, notification_channels, notifications, service_calls
from engine.errors import NotFound
from engine.models import ProcessInstance
from tests.factories import (
    APPLICANT,
    calls_of,
    complete,
    deploy_scenario,
    engine_data,
    instance,
    start,
)

KEY = "notify_scenario"
REFERENCE = "PL20261128000123"


@pytest.fixture
def mail_settings(settings, smtp_server, http_stub):
    """Settings pointing at the SMTP sink and the SMS gateway stub."""
    return dataclasses.replace(settings, smtp_port=smtp_server.port, sms_url=http_stub.url + "/sms")


def unused_port() -> int:
    """A port nothing listens on (until a test starts a server there)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def person(session_factory, username: str, *groups: str, locale="zh", active=True, **contact):
    with session_factory.begin() as session:
        user = directory.add_user(session, username, list(groups), display_name=username.title())
        user.email, user.phone = contact.get("email"), contact.get("phone")
        user.locale, user.is_active = locale, active


def submit(session_factory, settings, event="submitted", to="applicant", locale="zh") -> int:
    """Alice (张三) applies, gets an application number, and asks for `event` to go to `to`."""
    with session_factory.begin() as session:
        deploy_scenario(session, settings, KEY)
        user = directory.add_user(session, "alice", [], display_name="张三")
        user.email, user.phone, user.locale = "alice@example.com", "13800138000", locale
    instance_id = start(session_factory, settings, KEY, APPLICANT)
    with session_factory.begin() as session:
        session.get(ProcessInstance, instance_id).reference = REFERENCE
    form = {"event": event, "to": to, "amount": 80000, "opinion": "同意，期限 12 个月"}
    complete(session_factory, settings, APPLICANT, "Task_apply", form)
    return instance_id


def delivered(session_factory, instance_id: int) -> dict[str, notifications.DeliveryView]:
    with session_factory() as session:
        return {d.channel: d for d in notifications.deliveries(session, instance_id)}


def unread(session_factory, username: str) -> int:
    with session_factory() as session:
        return notifications.unread_count(session, username)


@pytest.mark.parametrize(
    ("locale", "subject", "sms"),
    [
        (
            "zh",
            f"您的申请 {REFERENCE} 已提交",
            f"【智慧审批】申请 {REFERENCE} 已提交，金额 80000 元。",
        ),
        ("en", f"Application {REFERENCE} received", f"[Smart Approval] Application {REFERENCE}"),
    ],
)
def test_applicant_gets_mail_sms_and_inbox_message_in_their_language(
    locale, subject, sms, session_factory, mail_settings, smtp_server, http_stub
):
    """One e-mail, one SMS and one unread in-app message, in the applicant's own language."""
    instance_id = submit(session_factory, mail_settings, locale=locale)
    assert service_calls.run_due(session_factory, mail_settings) == 1

    (mail,) = smtp_server.messages
    assert (mail["To"], mail["Subject"]) == ("alice@example.com", subject)
    assert "智慧审批" in mail["From"] and mail["Message-ID"]
    assert REFERENCE in mail.get_content() and "80000" in mail.get_content()
    assert ("张三，您好" in mail.get_content()) == (locale == "zh")
    (request,) = http_stub.requests
    (call,) = calls_of(session_factory, instance_id)
    assert (request.method, request.path) == ("POST", "/sms")
    assert request.json["to"] == "13800138000" and request.json["text"].startswith(sms)
    assert request.json["key"] == f"call:{call.id}:sms:alice"
    assert instance(session_factory, instance_id).status == "completed"
    assert engine_data(session_factory, mail_settings, instance_id)["notified"] == {
        "sent": [
            {"channel": channel, "recipient": "alice", "status": "sent"}
            for channel in ("email", "sms", "in_app")
        ]
    }
    with session_factory.begin() as session:
        (message,) = notifications.inbox_messages(session, "alice")
        assert (message.subject, message.read, message.instance_id) == (subject, False, instance_id)
        assert notifications.unread_count(session, "alice") == 1
        notifications.mark_read(session, "alice", message.id)
    assert unread(session_factory, "alice") == 0


def test_a_redelivered_call_sends_nothing_twice(
    session_factory, mail_settings, smtp_server, http_stub
):
    """A worker that dies after sending and a second run of the same call: still one of each."""
    instance_id = submit(session_factory, mail_settings)
    (call,) = calls_of(session_factory, instance_id)
    with session_factory() as session:
        info = service_calls.call_info(session, mail_settings, call, session_factory)
    first = service_calls.invoke(call, info)  # its worker dies before recording the outcome
    second = service_calls.invoke(call, info)
    for outcome in (second, first):
        with session_factory.begin() as session:
            service_calls.apply(session, mail_settings, call.id, outcome)
    service_calls.run_call(session_factory, mail_settings, call.id)

    assert first.result == second.result
    assert (len(smtp_server.messages), len(http_stub.requests)) == (1, 1)
    assert unread(session_factory, "alice") == 1
    assert {d.attempts for d in delivered(session_factory, instance_id).values()} == {1}
    assert instance(session_factory, instance_id).status == "completed"


def test_mail_server_down_is_retried_later_and_then_sends_once(
    session_factory, mail_settings, smtp_server, http_stub
):
    """While SMTP is down the call waits with back-off; the retry sends only the e-mail."""
    down = dataclasses.replace(mail_settings, smtp_port=unused_port())
    instance_id = submit(session_factory, down)
    service_calls.run_due(session_factory, down)

    (call,) = calls_of(session_factory, instance_id)
    assert call.status == "pending" and call.next_attempt_at > clock.now()
    assert "cannot be reached" in call.error
    rows = delivered(session_factory, instance_id)
    assert (rows["email"].status, rows["email"].attempts) == ("pending", 1)
    assert "cannot be reached" in rows["email"].last_error
    assert (rows["sms"].status, rows["in_app"].status) == ("sent", "sent")
    assert service_calls.run_due(session_factory, mail_settings) == 0  # not due yet

    clock.travel(timedelta(seconds=10))
    service_calls.run_due(session_factory, mail_settings)
    assert (len(smtp_server.messages), len(http_stub.requests)) == (1, 1)
    rows = delivered(session_factory, instance_id)
    assert (rows["email"].status, rows["email"].attempts, rows["email"].last_error) == (
        "sent",
        2,
        None,
    )
    assert unread(session_factory, "alice") == 1
    assert instance(session_factory, instance_id).status == "completed"


def test_mail_server_down_for_good_stops_with_the_failure_visible(
    session_factory, mail_settings, smtp_server
):
    """After the last try the instance is in error and the e-mail row says why."""
    down = dataclasses.replace(mail_settings, smtp_port=unused_port())
    instance_id = submit(session_factory, down)
    for _ in range(service_calls.MAX_ATTEMPTS):
        service_calls.run_due(session_factory, down)
        clock.travel(timedelta(minutes=5))

    row = instance(session_factory, instance_id)
    assert row.status == "error"
    assert "notification `submitted`" in row.error_message
    email = delivered(session_factory, instance_id)["email"]
    assert (email.status, email.attempts) == ("failed", service_calls.MAX_ATTEMPTS)
    assert "cannot be reached" in email.last_error
    assert smtp_server.messages == []


def test_gateway_error_500_is_retried_and_the_sms_sent_once(
    session_factory, mail_settings, smtp_server, http_stub
):
    """A gateway answering 500 gets the SMS again later; the e-mail is not sent again."""
    http_stub.respond = lambda request: (500, {"error": "busy"})
    instance_id = submit(session_factory, mail_settings)
    service_calls.run_due(session_factory, mail_settings)

    (call,) = calls_of(session_factory, instance_id)
    assert call.status == "pending" and "HTTP 500" in call.error
    sms = delivered(session_factory, instance_id)["sms"]
    assert (sms.status, sms.attempts) == ("pending", 1) and "HTTP 500" in sms.last_error

    http_stub.respond = lambda request: (200, {"ok": True})
    clock.travel(timedelta(seconds=10))
    service_calls.run_due(session_factory, mail_settings)
    assert (len(smtp_server.messages), len(http_stub.requests)) == (1, 2)
    assert delivered(session_factory, instance_id)["sms"].status == "sent"
    assert instance(session_factory, instance_id).status == "completed"


def test_gateway_refusal_400_is_not_retried_and_shows_on_the_instance(
    session_factory, mail_settings, smtp_server, http_stub
):
    """A 400 from the gateway will not get better: the instance stops with the reason."""
    http_stub.respond = lambda request: (400, {"error": "invalid number"})
    instance_id = submit(session_factory, mail_settings)
    service_calls.run_due(session_factory, mail_settings)

    (call,) = calls_of(session_factory, instance_id)
    assert call.status == "failed"
    row = instance(session_factory, instance_id)
    assert row.status == "error"
    assert "notification `submitted`" in row.error_message
    assert "HTTP 400" in row.error_message and "invalid number" in row.error_message
    rows = delivered(session_factory, instance_id)
    assert (rows["sms"].status, rows["sms"].attempts) == ("failed", 1)
    assert (rows["email"].status, len(smtp_server.messages), len(http_stub.requests)) == (
        "sent",
        1,
        1,
    )


def test_each_group_member_gets_their_own_message(session_factory, mail_settings, smtp_server):
    """Every active reviewer gets one reminder in their language; one without e-mail is skipped."""
    person(session_factory, "rui", "credit_reviewer", locale="en", email="rui@bank.example")
    person(session_factory, "rong", "credit_reviewer", email="rong@bank.example")
    person(session_factory, "ruo", "credit_reviewer")
    person(session_factory, "ren", "credit_reviewer", email="ren@bank.example", active=False)
    person(session_factory, "risk", "risk_reviewer", email="risk@bank.example")
    instance_id = submit(session_factory, mail_settings, "reminder", "group:credit_reviewer")
    service_calls.run_due(session_factory, mail_settings)

    subjects = {m["To"]: m["Subject"] for m in smtp_server.messages}
    assert subjects == {
        "rong@bank.example": f"提醒：申请 {REFERENCE} 待您处理",
        "rui@bank.example": f"Reminder: application {REFERENCE} is waiting for you",
    }
    assert [unread(session_factory, name) for name in ("rong", "rui", "ruo", "ren")] == [1, 1, 1, 0]
    result = engine_data(session_factory, mail_settings, instance_id)["notified"]["sent"]
    assert {"channel": "email", "recipient": "ruo", "status": "skipped"} | {
        "reason": "no e-mail address"
    } in result
    assert instance(session_factory, instance_id).status == "completed"


def test_declined_message_lists_reasons_and_suggestions(
    session_factory, mail_settings, smtp_server
):
    """The decline e-mail names every reason and every suggestion the diagram passed."""
    submit(session_factory, mail_settings, "declined")
    service_calls.run_due(session_factory, mail_settings)

    (mail,) = smtp_server.messages
    body = mail.get_content()
    assert mail["Subject"] == f"申请 {REFERENCE} 未获批准"
    assert "- 收入证明不足 income not proven" in body
    assert "- 补充近六个月银行流水 add six months of bank statements" in body


def test_sms_without_a_gateway_is_skipped_visibly(session_factory, mail_settings, http_stub):
    """With no SMS gateway configured the SMS is recorded as skipped and the rest goes out."""
    no_sms = dataclasses.replace(mail_settings, sms_url="")
    instance_id = submit(session_factory, no_sms)
    service_calls.run_due(session_factory, no_sms)

    sms = delivered(session_factory, instance_id)["sms"]
    assert (sms.status, sms.last_error) == ("skipped", "SMS gateway not configured")
    assert http_stub.requests == []
    assert instance(session_factory, instance_id).status == "completed"


def test_a_template_with_an_unknown_variable_fails_clearly(session_factory, mail_settings):
    """A text using a variable the diagram does not pass stops the instance, naming both."""
    instance_id = submit(session_factory, mail_settings, "broken")
    service_calls.run_due(session_factory, mail_settings)

    row = instance(session_factory, instance_id)
    assert row.status == "error"
    assert "notification `broken`" in row.error_message
    assert "'credit_limit' is undefined" in row.error_message
    assert calls_of(session_factory, instance_id)[0].status == "failed"  # not retried
    assert delivered(session_factory, instance_id) == {}


def test_a_message_being_sent_by_another_worker_is_not_sent_again(
    session_factory, mail_settings, smtp_server
):
    """While another worker holds the e-mail, this run leaves it alone and retries later."""
    instance_id = submit(session_factory, mail_settings)
    (call,) = calls_of(session_factory, instance_id)
    held = notification_channels.Draft(
        f"call:{call.id}:email:alice", instance_id, "submitted", "email", "alice",
        "alice@example.com", "zh", "s", "b",
    )  # fmt: skip
    assert notification_channels.claim(session_factory, held, timedelta(minutes=1)).mine
    service_calls.run_due(session_factory, mail_settings)

    assert smtp_server.messages == []
    assert calls_of(session_factory, instance_id)[0].status == "pending"
    clock.travel(timedelta(minutes=2))  # that worker died: its claim expires
    service_calls.run_due(session_factory, mail_settings)
    assert len(smtp_server.messages) == 1
    assert instance(session_factory, instance_id).status == "completed"


@pytest.mark.parametrize(
    ("password", "status"), [("secret", "completed"), ("wrong", "error")], ids=["right", "wrong"]
)
def test_mail_server_asking_for_a_login_gets_the_configured_one(
    password, status, session_factory, mail_settings
):
    """The configured user logs in before sending; a refused login stops without retrying."""
    arrived, logins = [], []

    class Server:
        async def handle_DATA(self, server, session, envelope):  # noqa: N802 (aiosmtpd's name)
            arrived.append(envelope.content)
            return "250 OK"

    def authenticator(server, session, envelope, mechanism, login):
        logins.append((login.login, login.password))
        return AuthResult(success=login.password == b"secret", handled=False)

    port = unused_port()
    controller = Controller(
        Server(), "127.0.0.1", port, authenticator=authenticator, auth_require_tls=False
    )
    controller.start()
    try:
        login = dataclasses.replace(
            mail_settings, smtp_port=port, smtp_user="mailer", smtp_password=password
        )
        instance_id = submit(session_factory, login)
        service_calls.run_due(session_factory, login)
    finally:
        controller.stop()

    assert set(logins) == {(b"mailer", password.encode())}  # smtplib tries each mechanism
    assert len(arrived) == (1 if password == "secret" else 0)
    assert instance(session_factory, instance_id).status == status
    email = delivered(session_factory, instance_id)["email"]
    assert email.status == ("sent" if password == "secret" else "failed")


TEMPLATE_ESCAPES = [
    "{{ ''.__class__.__mro__[1].__subclasses__() }}",
    "{{ reference.format.__globals__ }}",
    "{{ self._TemplateReference__context }}",
    "{{ lipsum.__globals__['os'].popen('id').read() }}",
    "{{ cycler.__init__.__globals__.os }}",
    "{% for a in range(100000) %}{% for b in range(100000) %}{% endfor %}{% endfor %}",
    "{{ 'x' * 1000000000 }}",
    "{{ 10 ** 10 ** 10 }}",
]


@pytest.mark.parametrize("body", TEMPLATE_ESCAPES)
def test_a_text_cannot_reach_python_internals_or_run_away(body):
    """Each escape or runaway attempt in a notification text is refused with a message."""
    entry = {"channels": ["in_app"], "zh": {"subject": "s", "body": body}}
    with pytest.raises(notifications.NotificationError, match="the zh body"):
        notifications.render(entry, "zh", {"reference": REFERENCE})


def test_texts_may_format_numbers_and_fall_back_to_chinese():
    """Numbers can be multiplied and formatted; an English reader of a zh-only event reads zh."""
    entry = {
        "channels": ["in_app"],
        "zh": {"subject": "额度", "body": "{{ '{:,}'.format(a * 2) }}"},
    }
    text = notifications.render(entry, "en-US", {"a": 40000})
    assert (text.locale, text.body, text.sms) == ("zh", "80,000", "额度")


def test_nobody_reads_someone_elses_message(session_factory, mail_settings):
    """Marking another person's in-app message read is refused as not found."""
    submit(session_factory, mail_settings)
    service_calls.run_due(session_factory, mail_settings)
    with session_factory.begin() as session:
        (message,) = notifications.inbox_messages(session, "alice")
        with pytest.raises(NotFound):
            notifications.mark_read(session, "bob", message.id)
    assert unread(session_factory, "alice") == 1
