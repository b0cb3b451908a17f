"""The engine's English messages in the reader's language (web/engine_words.py): each kind of
message on its own, every refusal written in engine/ found by reading its source, and the pages
where they appear: field errors of the application form, the inbox's flash, the error page."""

from __future__ import annotations

import ast
import json
import re
from pathlib import Path

import pytest
from flask import session
from sqlalchemy import select

from engine import accounts, applications, conflicts, documents, forms, identifiers, inbox, runtime
from engine import second_factor as factors
from engine.directory import Actor
from engine.errors import Invalid
from engine.models import HumanTask
from tests.process_helpers import loan_application, resident_id, uscc
from tests.stubs import outside_world
from web.engine_words import words

ENGINE = Path(__file__).resolve().parents[2] / "engine"
KEY = "personal_loan"
SCHEMA = json.dumps(
    {
        "type": "object",
        "required": ["name"],
        "properties": {
            "name": {"type": "string", "minLength": 2},
            "term": {"type": "integer", "enum": [12, 24]},
            "amount": {"type": "integer", "minimum": 1000, "multipleOf": 1000},
            "id_number": {"type": "string", "format": "cn-resident-id"},
            "mobile": {"type": "string", "format": "cn-mobile"},
            "code": {"type": "string", "pattern": "^[A-Z]+$"},
            "files": {"type": "array", "minItems": 2},
            "consent": {"const": True},
        },
    }
)


def refusal(data: dict, named: bool = True) -> str:
    """The one reason engine.forms gives for `data` (with a name, so only the field given fails)."""
    with pytest.raises(Invalid) as refused:
        forms.validate(SCHEMA, {"name": "张三", **data} if named else data)
    (error,) = refused.value.errors
    return error.message


def bad_uscc() -> str:
    good = uscc()
    return good[:-1] + ("0" if good[-1] != "0" else "1")


def bad_id() -> str:
    good = resident_id("19850315")
    return good[:-1] + ("0" if good[-1] != "0" else "1")


@pytest.fixture
def zh(app):
    """A request in the default language (Chinese)."""
    with app.test_request_context("/"):
        yield


@pytest.mark.parametrize(
    "message, chinese",
    [
        (lambda: refusal({"name": "张"}), "至少需要 2 个字符"),
        (lambda: refusal({"term": 36}), "须为以下之一：12, 24"),
        (lambda: refusal({"amount": 1500}), "须为 1000 的整数倍"),
        (lambda: refusal({"amount": 0}), "不能小于 1000"),
        (lambda: refusal({"amount": "lots"}), "须为整数"),
        (lambda: refusal({"code": "abc"}), "格式不正确"),
        (lambda: refusal({"files": ["a"]}), "至少需要 2 项"),
        (lambda: refusal({"consent": False}), "须勾选同意"),
        (lambda: refusal({"nickname": "x"}), "此表单没有这个字段"),
        (lambda: refusal({}, named=False), "此项必填"),
        (lambda: refusal({"id_number": bad_id()}), f"校验码应为 {resident_id('19850315')[-1]}"),
        (lambda: refusal({"id_number": "123"}), "居民身份证号码应为 18 位，而不是 3 位"),
        (lambda: refusal({"mobile": "138"}), "手机号码应为 11 位，而不是 3 位"),
        (lambda: identifiers.uscc_problem(bad_uscc()), f"校验码应为 {uscc()[-1]}"),
        (lambda: "must be text or a number", "须为文本或数字"),
        (lambda: "'2026-13-01' is not a 'date'", "不是有效的日期"),
        (lambda: "should be between 1 and 100", "应在 1 到 100 之间"),
        (lambda: documents.TOO_LARGE % {"file": "a.pdf", "limit": "10"}, "a.pdf：文件大于 10 MB"),
        (lambda: documents.WRONG_TYPE % {"file": "x.exe"}, "x.exe：只接受 PDF、JPEG 和 PNG 文件"),
        (lambda: "this task is taken by rui", "该任务已被 rui 认领"),
        (lambda: "you cannot review or approve your own application", "您不能审核或审批自己的申请"),
        (
            lambda: (
                "you already decided “初审” of this application; another person must decide "
                "this level (segregation of duties)"
            ),
            "您已处理过本申请的“初审”，本级须由其他人审批（岗位分离）",
        ),
        (lambda: "this task is ready, not claimed", "该任务未被认领"),
        (lambda: conflicts.CONFLICT_MESSAGE, "他人同时修改了该申请，请刷新后重试"),
        (
            lambda: "this task can no longer be completed (the application moved on)",
            "该任务已无法提交（申请已进入其他环节）",
        ),
        (lambda: applications.REVIEW_STARTED, "审核员已开始处理此申请，不能再撤回"),
        (lambda: "no application PL20261204000001", "没有申请编号为 PL20261204000001 的申请"),
        (lambda: accounts.USERNAME_TAKEN, "用户名已被占用"),
        (lambda: factors.TOO_SOON, "一分钟内已发送过验证码，请稍候"),
    ],
)
def test_each_kind_of_engine_message_is_shown_in_chinese(zh, message, chinese):
    """The engine's own words come out in Chinese, with the values it put in."""
    english = message()
    shown = words(english)
    assert chinese in shown and shown != english
    assert not re.search(r"[a-z]{4,}", shown.replace("rui", "")), shown


@pytest.mark.parametrize("message", ["something the engine says tomorrow", "", "该任务已完成"])
def test_a_message_no_template_fits_is_shown_as_it_is(zh, message):
    """Unknown (or already translated) text passes through unchanged."""
    assert words(message) == message


def test_english_readers_get_the_engine_text_untouched(app):
    """With English chosen, nothing is rewritten."""
    with app.test_request_context("/"):
        session["lang"] = "en"
        assert words("this task is taken by rui") == "this task is taken by rui"


# --- every refusal written in engine/ ----------------------------------------------------------

#: Exceptions whose first argument, and FieldError's second, is a message for a person.
RAISED = {"Forbidden": 0, "Conflict": 0, "TaskConflict": 0, "NotFound": 0, "FieldError": 1}


def _sample(node: ast.expr, constants: dict[str, str]) -> list[str]:
    """The message an argument makes, with every value inside written as 7."""
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return [re.sub(r"%\(\w+\)s", "7", node.value)]
    if isinstance(node, ast.JoinedStr):
        parts = [v.value if isinstance(v, ast.Constant) else "7" for v in node.values]
        return ["".join(parts)]
    if isinstance(node, ast.Name) and node.id in constants:
        return [constants[node.id]]
    if isinstance(node, ast.IfExp):
        return _sample(node.body, constants) + _sample(node.orelse, constants)
    return []


def _constants(tree: ast.Module) -> dict[str, str]:
    found = {}
    for node in tree.body:
        if isinstance(node, ast.Assign) and isinstance(node.value, ast.Constant):
            for target in node.targets:
                if isinstance(target, ast.Name) and isinstance(node.value.value, str):
                    found[target.id] = node.value.value
    return found


def engine_refusals() -> list[tuple[str, str]]:
    """(module, message) for every Forbidden/Conflict/NotFound/FieldError raised in engine/."""
    samples = []
    for path in sorted(ENGINE.glob("*.py")):
        tree = ast.parse(path.read_text())
        constants = _constants(tree)
        for node in ast.walk(tree):
            name = getattr(getattr(node, "func", None), "id", None)
            if isinstance(node, ast.Call) and name in RAISED and len(node.args) > RAISED[name]:
                for text in _sample(node.args[RAISED[name]], constants):
                    samples.append((path.name, text))
    return samples


@pytest.mark.parametrize("module, message", engine_refusals())
def test_every_refusal_written_in_the_engine_has_chinese(zh, module, message):
    """A new refusal in engine/ without a template here would reach a page in English."""
    assert words(message) != message, f"engine/{module}: {message!r}"


def test_the_engine_refusals_are_really_read(zh):
    """The source scan finds the refusals it guards (else the test above proves nothing)."""
    found = {message for _, message in engine_refusals()}
    assert "this task is taken by 7" in found
    assert "you cannot review or approve your own application" in found
    assert "this form has no such field" in found and len(found) > 40


# --- on the pages ------------------------------------------------------------------------------


@pytest.fixture
def settings(settings, smtp_server, http_stub):
    """Mail, SMS and the credit bureau on local stubs (the bureau finds a clean record)."""
    report = {"score": 760, "overdue_accounts": 0, "total_debt": 0, "monthly_debt_payment": 0}
    return outside_world(settings, smtp_server, http_stub, report)


def csrf(client, page: str) -> str:
    return re.search(r'name="csrf_token" value="([^"]+)"', client.get(page).get_data(as_text=True))[
        1
    ]


def field_errors(page: str, name: str) -> list[str]:
    """The error messages drawn inside the field `name`."""
    block = re.search(rf'data-field="{name}".*?(?=<div class="field[ "]|<fieldset)', page, re.S)
    assert block, f"no field {name}"
    return re.findall(r'class="field-error"[^>]*>([^<]*)<', block.group(0))


def post_application(client, **changes: str) -> str:
    form = {
        "applicant_name": "张三", "id_number": resident_id("19850315"), "mobile": "13800138000",
        "amount": "80000", "term_months": "36", "purpose": "renovation",
        "employment_type": "employed", "employer": "北京某科技有限公司",
        "employment_years": "6", "monthly_income": "15000", "monthly_debt": "1000",
        "housing": "owned", "consent": "on", **changes,
    }  # fmt: skip
    url = f"/applications/new/{KEY}"
    answer = client.post(url, data={"csrf_token": csrf(client, url), **form})
    assert answer.status_code == 422
    return answer.get_data(as_text=True)


def test_application_form_names_its_errors_in_chinese_then_in_english(client, sign_in, deployed):
    """A bad resident ID and a one-character name: the reasons next to each field are Chinese
    by default and the engine's English after choosing English."""
    sign_in("alice")
    page = post_application(client, applicant_name="张", id_number=bad_id())
    expected = identifiers.resident_id_problem(bad_id())
    digit = expected.rsplit(" ", 1)[1]
    assert field_errors(page, "applicant_name") == ["至少需要 2 个字符"]
    assert field_errors(page, "id_number") == [f"校验码应为 {digit}"]

    client.get("/lang/en")
    page = post_application(client, applicant_name="张", id_number=bad_id())
    assert field_errors(page, "applicant_name") == ["must be at least 2 characters"]
    assert field_errors(page, "id_number") == [expected]


def _review_task_claimed_by_rui(session_factory, settings, people, work) -> int:
    """alice applies; rui (credit reviewer) claims the first review; its task id."""
    people("alice")
    people("rui", "credit_reviewer")
    with session_factory.begin() as session:
        instance_id = runtime.start(session, settings, KEY, {}, Actor("alice"), defer=True).id
    work.drain()
    with session_factory.begin() as session:
        apply_id = _open(session, instance_id, "Task_apply")
        runtime.complete_task(
            session, settings, apply_id, Actor("alice"), loan_application(), defer=True
        )
    work.drain()
    with session_factory.begin() as session:
        task_id = _open(session, instance_id, "Task_review")
        inbox.claim(session, settings, task_id, Actor("rui", frozenset({"credit_reviewer"})))
    return task_id


def _open(session, instance_id: int, element_id: str) -> int:
    return session.scalar(
        select(HumanTask.id).where(
            HumanTask.instance_id == instance_id,
            HumanTask.element_id == element_id,
            HumanTask.state.in_(("ready", "claimed")),
        )
    )


def test_reviewer_claiming_a_task_taken_by_a_colleague_reads_why_in_chinese(
    client, sign_in, session_factory, settings, people, deployed, work
):
    """rong claims what rui took: the flash says so in Chinese, and in English on request."""
    task_id = _review_task_claimed_by_rui(session_factory, settings, people, work)
    sign_in("rong", "credit_reviewer")
    url = f"/inbox/tasks/{task_id}/claim"
    answer = client.post(url, data={"csrf_token": csrf(client, "/inbox/")})
    assert answer.status_code == 302
    assert "该任务已被 rui 认领" in client.get("/inbox/").get_data(as_text=True)

    client.get("/lang/en")
    client.post(url, data={"csrf_token": csrf(client, "/inbox/")})
    assert "this task is taken by rui" in client.get("/inbox/").get_data(as_text=True)


def test_error_page_speaks_chinese_but_the_json_answer_stays_english(client, sign_in, deployed):
    """An unknown application number: the page in Chinese, the JSON in the engine's English."""
    sign_in("alice")
    page = client.get("/track/PL19990101000001")
    assert page.status_code == 404
    assert "没有申请编号为 PL19990101000001 的申请" in page.get_data(as_text=True)
    answer = client.get("/track/PL19990101000001", headers={"Accept": "application/json"})
    assert answer.get_json() == {"error": "no application PL19990101000001"}


def test_refused_page_says_why_in_the_readers_language(client, sign_in, deployed):
    """Staff opening the applicant's form, then a page that is not there: Chinese pages, then
    English ones."""
    sign_in("rui", "credit_reviewer")
    answer = client.get(f"/applications/new/{KEY}")
    assert answer.status_code == 403
    assert "此页面仅供申请人使用" in answer.get_data(as_text=True)
    assert "此地址没有内容。" in client.get("/nowhere").get_data(as_text=True)
    client.get("/lang/en")
    page = client.get(f"/applications/new/{KEY}").get_data(as_text=True)
    assert "this page is for applicants" in page
    assert "There is nothing at this address." in client.get("/nowhere").get_data(as_text=True)
