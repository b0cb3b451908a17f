"""SpiffWorkflow wiring: parser, sandboxed script engine, deferred service tasks, lean serializer.

Decisions: (1) every script, condition and DMN cell runs in `engine.expressions`, never in
Python's eval/exec; (2) service tasks never run inline — they record the call and wait
(STARTED) until a worker completes them (`engine.task_specs`); (3) instance state is serialized
without its specs, which are stored once per deployed version and shared by every instance
loaded from it; (4) business rule tasks of every dialect evaluate `engine.dmn_drd` decisions;
(5) long diagrams start and run on a deep stack (`run_steps`, `engine.deep`).
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
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
from SpiffWorkflow.bpmn.util import task as _bpmn_task_util
from SpiffWorkflow.spiff.parser.process import SpiffBpmnParser
from SpiffWorkflow.spiff.parser.task_spec import ServiceTaskParser, SpiffTaskParser
from SpiffWorkflow.spiff.serializer.config import SPIFF_CONFIG
from SpiffWorkflow.util import task as _task_util
from SpiffWorkflow.util.task import TaskState

from engine import clock, deep, dmn_drd, expressions, task_specs
from engine.task_specs import SERVICE_CALL_KEY, DecisionTask, DeferredServiceTask

__all__ = ["SERVICE_CALL_KEY", "ApprovalParser", "DeferredServiceTask", "new_workflow"]
CAMUNDA_NS = "http://camunda.org/schema/1.0/bpmn"


class _ClockDatetime(_datetime):
    """`datetime` whose `now()` is the engine clock, so timers obey tests' time travel."""

    @classmethod
    def now(cls, tz=None):
        moment = clock.now()
        return moment if tz is None else moment.astimezone(tz)


# SpiffWorkflow's timers read datetime.now() directly; one clock for the whole engine.
_timer_module.datetime = _ClockDatetime
# SpiffWorkflow stops looking for tasks 1,000 levels down the task tree, where a long chain or a
# loop taken many times puts its next task: it would call such an instance completed, silently.
_task_util.TaskIterator.__init__.__defaults__ = (None, sys.maxsize, True, None)
_bpmn_task_util.BpmnTaskIterator.__init__.__defaults__ = (None, sys.maxsize, True, False, None)


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


class DecisionTaskParser(SpiffTaskParser):
    """A business rule task with its decision and every decision that one requires."""

    def create_task(self):
        ref = self.get_decision_ref(self.node)
        decisions = dmn_drd.closure(self.process_parser.parser.decisions, ref or "")
        if ref not in decisions:
            self.raise_validation_exception(f"No DMN Diagram available with id {ref}")
        extensions = self.parse_extensions()
        return DecisionTask(
            self.spec,
            self.bpmn_id,
            decisions=decisions,
            decision_ref=ref,
            camunda=self.node.get(f"{{{CAMUNDA_NS}}}decisionRef") is not None,
            prescript=extensions.get("preScript"),
            postscript=extensions.get("postScript"),
            **self.bpmn_attributes,
        )

    @staticmethod
    def get_decision_ref(node):
        camunda = node.get(f"{{{CAMUNDA_NS}}}decisionRef")
        return camunda or SpiffTaskParser._parse_extensions(node).get("calledDecisionId")


class ApprovalParser(SpiffBpmnParser):
    """SpiffArena's and plain BPMN diagrams; decision tables are read by `engine.dmn_drd`."""

    OVERRIDE_PARSER_CLASSES = {
        **SpiffBpmnParser.OVERRIDE_PARSER_CLASSES,
        full_tag("serviceTask"): (OperatorServiceTaskParser, DeferredServiceTask),
        full_tag("businessRuleTask"): (DecisionTaskParser, DecisionTask),
    }

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.decisions: dict[str, dict] = {}

    def add_dmn_xml(self, node, filename=None):
        self.decisions.update(dmn_drd.read(node))


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


class DeepWorkflow(BpmnWorkflow):
    """A workflow whose engine steps and timer refreshes run on a deep stack when its diagram is
    long: SpiffWorkflow predicts a chosen branch recursively, one frame per task."""

    def do_engine_steps(self, will_complete_task=None, did_complete_task=None):
        steps = super().do_engine_steps
        return run_steps(self, lambda _: steps(will_complete_task, did_complete_task))

    def refresh_timers(self):
        refresh = super().refresh_timers
        return run_steps(self, lambda _: refresh())


def _registry():
    config = dict(SPIFF_CONFIG)
    config.update(task_specs.CONVERTERS)
    config[BpmnWorkflow] = _LeanWorkflowConverter
    registry = BpmnWorkflowSerializer.configure(config)
    # Stored as "BpmnWorkflow", as before; every state, old or new, is restored as DeepWorkflow.
    _LeanWorkflowConverter(DeepWorkflow, registry, typename="BpmnWorkflow")
    return registry


_REGISTRY = _registry()


def specs_to_json(specs: dict[str, Any]) -> str:
    """Serialize every process spec of a bundle (top-level and subprocesses), keyed by id."""
    return json.dumps({name: _REGISTRY.convert(spec) for name, spec in specs.items()})


@lru_cache(maxsize=256)
def specs_from_json(specs_json: str) -> dict[str, Any]:
    """Specs are immutable once deployed, so one restored copy serves every instance."""
    return {name: _REGISTRY.restore(dct) for name, dct in json.loads(specs_json).items()}


def new_workflow(
    specs: dict[str, Any], process_id: str, step_limit: int, initiator: str | None = None
) -> BpmnWorkflow:
    """A new instance; `initiator` (who starts it) fills the variables `camunda:initiator` names."""
    others = {name: spec for name, spec in specs.items() if name != process_id}

    def build() -> BpmnWorkflow:
        engine = SandboxScriptEngine(step_limit)
        workflow = DeepWorkflow(specs[process_id], others, script_engine=engine)
        if initiator is not None:
            variables = {v: initiator for v in initiator_variables(specs[process_id])}
            for task in workflow.get_tasks(state=TaskState.READY):
                task.set_data(**variables)
        return workflow

    return deep.run_for(specs, build)


def initiator_variables(spec) -> list[str]:
    """The variables a process's start events name in `camunda:initiator`."""
    return [
        task_specs.camunda_settings(s)["initiator"]
        for s in spec.task_specs.values()
        if type(s).__name__ == "StartEvent" and task_specs.camunda_settings(s).get("initiator")
    ]


def run_steps(workflow: BpmnWorkflow, action: Callable[[BpmnWorkflow], Any]) -> Any:
    """`action(workflow)` on a deep stack when the diagram is long (a host may wrap any other
    change of a workflow in it; engine steps and timer refreshes already are)."""
    specs = {"": workflow.spec, **workflow.subprocess_specs}
    return deep.run_for(specs, lambda: action(workflow))


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
