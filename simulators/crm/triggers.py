"""Change-notification triggers: a SOQL condition per object and workflow-style evaluation."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

from simulators.crm import soql
from simulators.crm.models import Record
from simulators.crm.query import Binder, QueryError, Resolve
from simulators.crm.schema import Schema, SObjectDef

# Salesforce workflow evaluation criteria, which decide when an outbound message is sent.
Evaluation = Literal["created", "created_and_edited", "created_and_subsequently_meets"]
EVALUATIONS: tuple[str, ...] = ("created", "created_and_edited", "created_and_subsequently_meets")


@dataclass(frozen=True)
class Trigger:
    """Push a notification of ``event_type`` when a ``sobject`` record meets ``criteria``.

    ``criteria`` is a SOQL WHERE condition over the record (``IsClosed = true``,
    ``StageName = 'Closed Won' AND Amount > 0``). ``evaluation`` as in Salesforce workflow:
    only on create, on every create or edit that meets it, or (the default) on create or when an
    edit makes a record meet it that did not before — "entering" a state.
    """

    event_type: str
    sobject: str
    criteria: str
    evaluation: Evaluation = "created_and_subsequently_meets"


# An Opportunity entering a closed stage (won or lost): what a billing integration acts on.
DEFAULT_TRIGGERS: tuple[Trigger, ...] = (
    Trigger("opportunity.closed", "Opportunity", "IsClosed = true"),
)


class CompiledTrigger:
    """A trigger checked against the schema once; its condition is bound again per evaluation
    so relative dates (``LAST_N_DAYS:7``) mean the simulated now, not the start-up time."""

    def __init__(self, trigger: Trigger, schema: Schema, action_id: str) -> None:
        obj = schema.sobject(trigger.sobject)
        if obj is None:
            raise ValueError(f"trigger {trigger.event_type}: unknown object {trigger.sobject!r}")
        if trigger.evaluation not in EVALUATIONS:
            raise ValueError(f"trigger {trigger.event_type}: evaluation is one of {EVALUATIONS}")
        self.trigger = trigger
        self.obj: SObjectDef = obj
        self.schema = schema
        self.action_id = action_id
        try:
            self.condition = soql.parse_condition(trigger.criteria)
            self._bind(0)
        except (soql.SoqlError, QueryError) as exc:
            raise ValueError(f"trigger {trigger.event_type}: {exc}") from None

    def _bind(self, now_ms: int) -> Callable[[Record, Resolve], bool]:
        return Binder(self.schema, self.trigger.criteria, now_ms).condition(
            self.obj, self.condition
        )

    def fires(self, before: Record | None, after: Record, resolve: Resolve, now_ms: int) -> bool:
        matches = self._bind(now_ms)
        now_meets = matches(after, resolve)
        evaluation = self.trigger.evaluation
        if evaluation == "created":
            return before is None and now_meets
        if evaluation == "created_and_edited":
            return now_meets
        return now_meets and (before is None or not matches(before, resolve))
