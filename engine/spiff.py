"""SpiffWorkflow wiring: parser, sandboxed script engine, deferred service tasks, lean serializer.

Decisions: (1) every script, condition and DMN cell runs in `engine.expressions`, never in
Python's eval/exec; (2) service tasks never run inline — they record the call and wait
(STARTED) until a worker completes them; (3) instance state is serialized without its specs,
which are stored once per deployed version and shared by every instance loaded from it.
"""

from __future__ import annotations

import json
from datetime import datetime as _datetime
from functools import lru_cache
from typing import Any

from SpiffWorkflow.bpmn import BpmnWorkflow
from SpiffWorkflow.bpmn.parser.util import full_tag
from SpiffWorkflow.bpmn.parser.ValidationException import ValidationException
from SpiffWorkflow.bpmn.script_engine import PythonScriptEngine
from SpiffWorkflow.bpmn.script_engine.python_environment import BasePythonScriptEngineEnvironment
from SpiffWorkflow.bpmn.serializer.default.workflow import BpmnWorkflowConverter
from SpiffWorkflow.bpmn.serializer.workflow import BpmnWorkflowSerializer
from SpiffWorkflow.bpmn.specs.event_definitions import timer as _timer_module
from SpiffWorkflow.spiff.parser.process import SpiffBpmnParser
from SpiffWorkflow.spiff.parser.task_spec import ServiceTaskParser
from SpiffWorkflow.spiff.serializer.config import SPIFF_CONFIG
from SpiffWorkflow.spiff.serializer.task_spec import ServiceTaskConverter
from SpiffWorkflow.spiff.specs.defaults import ServiceTask

from engine import clock, expressions

SERVICE_CALL_KEY = "service_call"


class _ClockDatetime(_datetime):
    """`datetime` whose `now()` is the engine clock, so timers obey tests' time travel."""

    @classmethod
    def now(cls, tz=None):
        moment = clock.now()
        return moment if tz is None else moment.astimezone(tz)


# SpiffWorkflow's timers read datetime.now() directly; one clock for the whole engine.
_timer_module.datetime = _ClockDatetime


class SandboxEnvironment(BasePythonScriptEngineEnvironment):
    """Runs diagram code in the restricted evaluator; data in and out stays plain JSON."""

    def __init__(self, step_limit: int = 100_000):
        super().__init__({})
        self.step_limit = step_limit

    def evaluate(self, expression, context, external_context=None):
        names = {**(external_context or {}), **context} if external_context else context
        return expressions.evaluate(expression, names)

    def execute(self, script, context, external_context=None):
        expressions.execute(script, context, step_limit=self.step_limit)
        return True

    def call_service(self, context, **kwargs):
        raise RuntimeError("service tasks are deferred; they never run inside the engine")


class SandboxScriptEngine(PythonScriptEngine):
    def __init__(self, step_limit: int = 100_000):
        super().__init__(environment=SandboxEnvironment(step_limit))

    def validate(self, expression):
        # The DMN engine probes cells with validate(); a refused cell must look like a syntax error.
        try:
            expressions.compile_expression(expression)
        except expressions.ExpressionError as err:
            raise SyntaxError(str(err)) from None


class DeferredServiceTask(ServiceTask):
    """Records the operator call in the task and waits; `runtime` completes it with the result."""

    def _execute(self, task):
        params = {name: p["value"] for name, p in self.evaluate_params(task).items()}
        task._set_internal_data(
            **{SERVICE_CALL_KEY: {"operator": self.operation_name, "params": params}}
        )
        return None


class OperatorServiceTaskParser(ServiceTaskParser):
    """The operator named by `spiffworkflow:serviceTaskOperator` or by plain `implementation`."""

    def create_task(self):
        if self.parse_extensions().get("serviceTaskOperator") is not None:
            return super().create_task()
        operator = self.node.get("implementation") or ""
        if not operator or operator.startswith("##"):
            raise ValidationException(
                "this service task names no operator: add a spiffworkflow:serviceTaskOperator or "
                "set implementation to an operator name",
                node=self.node,
                file_name=self.filename,
            )
        return self.spec_class(
            self.spec,
            self.bpmn_id,
            operation_name=operator,
            operation_params={},
            result_variable=None,
            **self.bpmn_attributes,
        )


class ApprovalParser(SpiffBpmnParser):
    OVERRIDE_PARSER_CLASSES = {
        **SpiffBpmnParser.OVERRIDE_PARSER_CLASSES,
        full_tag("serviceTask"): (OperatorServiceTaskParser, DeferredServiceTask),
    }


class _LeanWorkflowConverter(BpmnWorkflowConverter):
    """Leaves the specs out of the state; they come back from the deployed version on load."""

    def to_dict(self, workflow):
        dct = super().to_dict(workflow)
        del dct["spec"], dct["subprocess_specs"]
        return dct

    def from_dict(self, dct, spec=None, subprocess_specs=None):
        dct = dict(dct, spec={}, subprocess_specs={})
        workflow = self.target_class(spec, subprocess_specs, deserializing=True)
        return self._restore_into(workflow, dct)

    def _restore_into(self, workflow, dct):
        from uuid import UUID

        workflow.tasks = self.mapping_from_dict(dct["tasks"], UUID, workflow=workflow)
        workflow.task_tree = workflow.tasks.get(UUID(dct["root"]))
        self.set_default_attributes(workflow, dct)
        self.subprocesses_from_dict(dct["subprocesses"], workflow)
        workflow.bpmn_events = self.registry.restore(dct.pop("bpmn_events", []))
        return workflow


def _registry():
    config = dict(SPIFF_CONFIG)
    config[DeferredServiceTask] = ServiceTaskConverter
    config[BpmnWorkflow] = _LeanWorkflowConverter
    return BpmnWorkflowSerializer.configure(config)


_REGISTRY = _registry()


def specs_to_json(specs: dict[str, Any]) -> str:
    """Serialize every process spec of a bundle (top-level and subprocesses), keyed by id."""
    return json.dumps({name: _REGISTRY.convert(spec) for name, spec in specs.items()})


@lru_cache(maxsize=256)
def specs_from_json(specs_json: str) -> dict[str, Any]:
    """Specs are immutable once deployed, so one restored copy serves every instance."""
    return {name: _REGISTRY.restore(dct) for name, dct in json.loads(specs_json).items()}


def new_workflow(specs: dict[str, Any], process_id: str, step_limit: int) -> BpmnWorkflow:
    others = {name: spec for name, spec in specs.items() if name != process_id}
    return BpmnWorkflow(specs[process_id], others, script_engine=SandboxScriptEngine(step_limit))


def state_to_json(workflow: BpmnWorkflow) -> str:
    return json.dumps(_REGISTRY.convert(workflow), separators=(",", ":"))


def state_from_json(
    state: str, specs: dict[str, Any], process_id: str, step_limit: int
) -> BpmnWorkflow:
    others = {name: spec for name, spec in specs.items() if name != process_id}
    dct = json.loads(state)
    workflow = _REGISTRY.restore(dct, spec=specs[process_id], subprocess_specs=others)
    workflow.script_engine = SandboxScriptEngine(step_limit)
    return workflow
