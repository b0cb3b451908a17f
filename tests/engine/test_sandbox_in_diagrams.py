"""Diagrams are untrusted: code in them is refused at deploy or fails harmlessly when it runs.

Each vector is put into a small diagram built in tmp_path (a script task, then a gateway whose
condition decides). Either the deploy refuses it with a message naming the element and the
reason, or the instance stops in `error` with a clear message and the attempt has no effect:
no file created, no data written.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from xml.sax.saxutils import escape

import pytest

from engine import runtime
from engine.errors import ValidationFailed
from tests.factories import APPLICANT, deploy_folder, engine_data, events, instance

KEY = "sandbox_probe"
BPMN = """<?xml version="1.0" encoding="UTF-8"?>
<bpmn:definitions xmlns:bpmn="http://www.omg.org/spec/BPMN/20100524/MODEL" id="Definitions_1"
    targetNamespace="http://bpmn.io/schema/bpmn">
  <bpmn:process id="sandbox_probe" isExecutable="true">
    <bpmn:startEvent id="StartEvent_1" />
    {task}
    <bpmn:exclusiveGateway id="Gateway_probe" default="Flow_no" />
    <bpmn:endEvent id="End_yes" />
    <bpmn:endEvent id="End_no" />
    <bpmn:sequenceFlow id="Flow_1" sourceRef="StartEvent_1" targetRef="Task_probe" />
    <bpmn:sequenceFlow id="Flow_2" sourceRef="Task_probe" targetRef="Gateway_probe" />
    <bpmn:sequenceFlow id="Flow_yes" sourceRef="Gateway_probe" targetRef="End_yes">
      <bpmn:conditionExpression>{condition}</bpmn:conditionExpression>
    </bpmn:sequenceFlow>
    <bpmn:sequenceFlow id="Flow_no" sourceRef="Gateway_probe" targetRef="End_no" />
  </bpmn:process>
  {more}
</bpmn:definitions>
"""
SCRIPT = (
    '<bpmn:scriptTask id="Task_probe" name="Probe"><bpmn:script>{}</bpmn:script></bpmn:scriptTask>'
)
CALL = '<bpmn:callActivity id="Task_probe" name="Probe" calledElement="{}" />'
HELPER = """<bpmn:process id="helper" isExecutable="true">
    <bpmn:startEvent id="Helper_start" />
    <bpmn:callActivity id="Helper_call" name="Back again" calledElement="sandbox_probe" />
    <bpmn:endEvent id="Helper_end" />
    <bpmn:sequenceFlow id="Helper_1" sourceRef="Helper_start" targetRef="Helper_call" />
    <bpmn:sequenceFlow id="Helper_2" sourceRef="Helper_call" targetRef="Helper_end" />
  </bpmn:process>"""
TOUCH = "__import__('os').system('touch {marker}')"
SUBCLASSES = "().__class__.__base__.__subclasses__()"
PASSWD = "open('/etc/passwd').read()"


@dataclass(frozen=True)
class Vector:
    name: str
    script: str = "ok = 1"
    condition: str = "ok == 1"
    task: str = SCRIPT
    more: str = ""
    message: str = ""  # what the refusal or the error says

    def bpmn(self, marker: Path) -> str:
        code = self.script.format(marker=marker)
        task = self.task.format(escape(code)) if self.task == SCRIPT else self.task
        condition = escape(self.condition.format(marker=marker))
        return BPMN.format(task=task, condition=condition, more=self.more)


REFUSED_AT_DEPLOY = [
    Vector("import in a script", script=TOUCH, message="`__import__` is not available"),
    Vector("import in a condition", condition=TOUCH, message="`__import__` is not available"),
    Vector("subclass walk in a script", script=f"x = {SUBCLASSES}", message="`__class__`"),
    Vector(
        "subclass walk in a condition", condition=f"len({SUBCLASSES}) > 0", message="`__class__`"
    ),
    Vector(
        "read a file in a script", script=f"secret = {PASSWD}", message="`open` is not available"
    ),
    Vector("read a file in a condition", condition=f"{PASSWD} != ''", message="`open`"),
    Vector("endless loop", script="while True: pass", message="`while` loops are not allowed"),
    Vector(
        "format reaching attributes", script="x = '{{0.__class__}}'.format(1)", message="format"
    ),
    Vector("eval", condition="eval('1') == 1", message="`eval` is not available"),
    Vector("builtins", script="b = __builtins__", message="`__builtins__` is not available"),
    Vector(
        "self-recursive call activity",
        task=CALL.format(KEY),
        message="calls `sandbox_probe`, its own process: a process may not call itself",
    ),
    Vector(
        "call activities calling each other",
        task=CALL.format("helper"),
        more=HELPER,
        message="recursion is not allowed",
    ),
]

FAIL_AT_RUN_TIME = [
    Vector(
        "nested loops",
        script="leaked = 1\nfor i in range(10000):\n    for j in range(10000):\n        x = i",
        message="steps",
    ),
    Vector(
        "huge number", script="leaked = 1\nn = 10 ** 10 ** 10", message="the power is too large"
    ),
    Vector(
        "huge text in a condition",
        condition="len('x' * (10 ** 9)) > 0",
        message="longer than 1,000,000",
    ),
    Vector(
        "deep data",
        script="leaked = []\nd = leaked\nfor i in range(200):\n    d.append([])\n    d = d[0]",
        message="nested more than",
    ),
]


def deploy(session_factory, settings, tmp_path: Path, vector: Vector):
    marker = tmp_path / "pwned"
    folder = tmp_path / "bundle" / "processes" / KEY
    folder.mkdir(parents=True)
    (folder / f"{KEY}.bpmn").write_text(vector.bpmn(marker), encoding="utf-8")
    with session_factory.begin() as session:
        return deploy_folder(session, settings, tmp_path / "bundle")


@pytest.mark.parametrize("vector", REFUSED_AT_DEPLOY, ids=lambda v: v.name)
def test_dangerous_diagram_code_is_refused_at_deploy(vector, tmp_path, session_factory, settings):
    """The deploy fails, naming the file, line, element and the reason; nothing runs."""
    with pytest.raises(ValidationFailed) as refused:
        deploy(session_factory, settings, tmp_path, vector)
    message = str(refused.value)
    assert message.startswith(f"processes/{KEY}/{KEY}.bpmn:"), message
    assert vector.message in message
    assert not (tmp_path / "pwned").exists()


@pytest.mark.parametrize("vector", FAIL_AT_RUN_TIME, ids=lambda v: v.name)
def test_runaway_diagram_code_stops_the_instance_without_effect(
    vector, tmp_path, session_factory, settings
):
    """The instance is in error with a clear message, and nothing the code wrote is kept."""
    deploy(session_factory, settings, tmp_path, vector)
    with session_factory.begin() as session:
        instance_id = runtime.start(session, settings, KEY, {}, APPLICANT).id

    row = instance(session_factory, instance_id)
    assert row.status == "error"
    assert row.error_task in ("Task_probe", "Gateway_probe")
    assert vector.message in row.error_message
    assert "Traceback" not in row.error_message
    data = engine_data(session_factory, settings, instance_id)
    assert "leaked" not in data and "x" not in data
    assert [kind for kind, _ in events(session_factory, instance_id)] == ["start", "error"]
    assert not (tmp_path / "pwned").exists()
