"""The task specs the engine adds to SpiffWorkflow's, each with the converter that stores it.

Decisions: (1) service tasks never run inline: `DeferredServiceTask` records the operator call
and waits (STARTED) until a worker completes it; `ExternalTopicTask` is the same for Camunda's
external topics, whose answer is merged into the data (or mapped by its output parameters).
(2) `DecisionTask` is the business rule task of every dialect; it carries its decisions as data
(`engine.dmn_drd`). (3) Camunda's user tasks decide their assignee when they become ready
(`engine.assignment`); Camunda's plain and manual tasks pass straight through, as in Camunda.
"""

from __future__ import annotations

import copy
from typing import Any

from SpiffWorkflow.bpmn.exceptions import WorkflowTaskException
from SpiffWorkflow.spiff.serializer.task_spec import (
    ServiceTaskConverter,
    SpiffBpmnTaskConverter,
    UserTaskConverter,
)
from SpiffWorkflow.spiff.specs.defaults import NoneTask, ServiceTask, UserTask
from SpiffWorkflow.spiff.specs.spiff_task import SpiffBpmnTask
from SpiffWorkflow.util.deep_merge import DeepMerge

from engine import assignment, dmn_drd
from engine.errors import ExpressionError

SERVICE_CALL_KEY = "service_call"


def camunda_settings(spec) -> dict[str, Any]:
    """What the Camunda parser read from the task's `camunda:` attributes (see engine.camunda)."""
    return (getattr(spec, "extensions", None) or {}).get("camunda", {})


class DeferredServiceTask(ServiceTask):
    """Records the operator call in the task and waits; `runtime` completes it with the result."""

    def call_params(self, task) -> dict[str, Any]:
        return {name: p["value"] for name, p in self.evaluate_params(task).items()}

    def _execute(self, task):
        params = self.call_params(task)
        task._set_internal_data(
            **{SERVICE_CALL_KEY: {"operator": self.operation_name, "params": params}}
        )
        return None


class ExternalTopicTask(DeferredServiceTask):
    """Camunda's `camunda:type="external"`: the operator named by the topic does the work.

    Without input parameters the operator sees all the data, as a Camunda worker would.
    """

    def call_params(self, task) -> dict[str, Any]:
        if self.operation_params:
            return super().call_params(task)
        return copy.deepcopy(task.data)

    def _on_complete_hook(self, my_task):
        result = my_task.data.pop(self.result_variable, None) or {}
        outputs = camunda_settings(self).get("outputs") or []
        if not outputs:
            my_task.data.update(result)
        environment = my_task.workflow.script_engine.environment
        names = {**my_task.data, **result}
        for name, expression in outputs:
            my_task.data[name] = environment.evaluate(expression, names)
        super()._on_complete_hook(my_task)


class CamundaUserTask(UserTask):
    """A user task whose assignee, candidates and due date come from its own settings."""

    def _update_hook(self, my_task):
        ready = super()._update_hook(my_task)
        settings = camunda_settings(self)
        if ready and any(settings.get(k) for k in assignment.FIELDS):
            try:
                recorded = assignment.evaluate(my_task, settings)
            except ExpressionError as err:
                raise WorkflowTaskException(str(err), task=my_task, exception=err) from err
            my_task._set_internal_data(**{assignment.ASSIGNMENT_KEY: recorded})
        return ready


class PassThroughTask(NoneTask):
    """Camunda runs a plain or manual task by simply passing it."""

    def __init__(self, wf_spec, bpmn_id, **kwargs):
        super().__init__(wf_spec, bpmn_id, **kwargs)
        self.manual = False


class DecisionTask(SpiffBpmnTask):
    """A business rule task: evaluates its decision (after the decisions it requires).

    SpiffArena's style merges the outputs into the data; Camunda's stores them in
    `result_variable`, shaped by `map_result` (and keeps nothing without a result variable).
    """

    def __init__(self, wf_spec, name, decisions, decision_ref, camunda=False, **kwargs):
        super().__init__(wf_spec, name, **kwargs)
        self.decisions = decisions
        self.decision_ref = decision_ref
        self.camunda = camunda

    def _run_hook(self, my_task):
        environment = my_task.workflow.script_engine.environment
        try:
            results = dmn_drd.decide(
                self.decisions, self.decision_ref, my_task.data, environment.evaluate, self.camunda
            )
            if self.camunda:
                self._keep(my_task, results)
            else:
                decision = self.decisions[self.decision_ref]
                my_task.data = DeepMerge.merge(my_task.data, dmn_drd.as_dict(decision, results))
        except (ExpressionError, dmn_drd.DecisionError) as err:
            raise WorkflowTaskException(str(err), task=my_task, exception=err) from err
        return super()._run_hook(my_task)

    def _keep(self, my_task, results: list[dict]) -> None:
        settings = camunda_settings(self)
        variable = settings.get("result_variable")
        if variable:
            my_task.data[variable] = dmn_drd.mapped(results, settings.get("map_result"))


class DecisionTaskConverter(SpiffBpmnTaskConverter):
    def to_dict(self, spec):
        dct = super().to_dict(spec)
        dct.update(decisions=spec.decisions, decision_ref=spec.decision_ref, camunda=spec.camunda)
        return dct


CONVERTERS = {
    DeferredServiceTask: ServiceTaskConverter,
    ExternalTopicTask: ServiceTaskConverter,
    CamundaUserTask: UserTaskConverter,
    PassThroughTask: SpiffBpmnTaskConverter,
    DecisionTask: DecisionTaskConverter,
}
