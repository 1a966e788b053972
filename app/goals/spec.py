"""A goal checked and as the progress math sees it: validation, canonical target values, spec.

Progress values are in the type's canonical unit (``progress.unit``); the target keeps the unit
it was given in.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import date
from decimal import Decimal

from app.errors import ErrorItem
from app.goals.models import Goal, Milestone
from app.goals.schemas import Lifecycle, MeasureIn, MilestoneIn, TargetIn
from rules.catalogue import UnknownUnit, is_accepted_unit, plausible_range, spec_for, to_canonical
from rules.progress import Aggregate, Direction, GoalSpec, Measure, MilestoneSpec, Target

OPEN = (Lifecycle.PROPOSED.value, Lifecycle.ACTIVE.value)
"""Goals whose progress is kept up to date."""


def components_of(type_: str, component: str | None) -> tuple[str, ...]:
    """The components a measure looks at: the one named, or every component of the type."""
    spec = spec_for(type_)
    if spec is None:
        return ()
    if component is None:
        return spec.components
    return (component,) if component in spec.components else ()


def _canonical(
    type_: str,
    value: float | Mapping[str, float],
    unit: str,
    components: tuple[str, ...],
    loc: str,
    errors: list[ErrorItem],
) -> dict[str, float]:
    """Target values per component in the canonical unit; problems go to ``errors``."""
    if not is_accepted_unit(type_, unit):
        errors.append(
            ErrorItem(
                loc=f"{loc}.unit", code="unknown_unit", message=f"{unit!r} is not a unit of {type_}"
            )
        )
        return {}
    if isinstance(value, Mapping):
        values = dict(value)
    elif len(components) == 1:
        values = {components[0]: value}
    else:
        values = {}
    if set(values) != set(components):
        errors.append(
            ErrorItem(
                loc=f"{loc}.value",
                code="invalid",
                message=f"give one number, or an object with exactly {', '.join(components)}",
            )
        )
        return {}
    out: dict[str, float] = {}
    for component, number in values.items():
        try:
            canonical = to_canonical(type_, Decimal(str(number)), unit)
        except (UnknownUnit, ValueError) as exc:
            errors.append(ErrorItem(loc=f"{loc}.value", code="invalid", message=str(exc)))
            continue
        bounds = plausible_range(type_, component)
        if bounds is not None and not bounds[0] <= canonical <= bounds[1]:
            errors.append(
                ErrorItem(
                    loc=f"{loc}.value",
                    code="implausible",
                    message=f"{component} {number} {unit} is outside {bounds[0]}–{bounds[1]}",
                )
            )
            continue
        out[component] = float(canonical)
    return out


def validate(
    measure: MeasureIn,
    target: TargetIn,
    milestones: Sequence[MilestoneIn],
    start: date,
    due: date | None,
) -> list[ErrorItem]:
    """The problems of a goal's measure, target, dates and milestones (empty: valid)."""
    errors: list[ErrorItem] = []
    components = components_of(measure.type, measure.component)
    if not components:
        errors.append(
            ErrorItem(
                loc="measure.component",
                code="unknown_component",
                message=f"{measure.type} has the components "
                f"{', '.join(components_of(measure.type, None))}",
            )
        )
        return errors
    _canonical(measure.type, target.value, target.unit, components, "target", errors)
    if due is not None and due < start:
        errors.append(
            ErrorItem(loc="due", code="before_start", message="the due date is before the start")
        )
    for index, milestone in enumerate(milestones):
        loc = f"milestones.{index}"
        _canonical(
            measure.type,
            milestone.target.value,
            milestone.target.unit,
            components,
            f"{loc}.target",
            errors,
        )
        if milestone.due is not None and milestone.due < start:
            errors.append(
                ErrorItem(
                    loc=f"{loc}.due",
                    code="before_start",
                    message="the due date is before the start",
                )
            )
    return errors


def goal_spec(goal: Goal, milestones: Sequence[Milestone]) -> GoalSpec:
    """A stored goal as the progress math sees it (target values in the canonical unit)."""
    m, t = goal.measure, goal.target
    components = components_of(m["type"], m.get("component"))
    errors: list[ErrorItem] = []
    values = _canonical(m["type"], t["value"], t["unit"], components, "target", errors)
    specs = []
    for milestone in milestones:
        target = milestone.target
        specs.append(
            MilestoneSpec(
                key=milestone.id,
                values=_canonical(
                    m["type"], target["value"], target["unit"], components, "m", errors
                ),
                due=milestone.due,
            )
        )
    if errors:
        raise ValueError(f"goal {goal.id} is stored invalid: {[e.model_dump() for e in errors]}")
    return GoalSpec(
        measure=Measure(m["type"], Aggregate(m["aggregate"]), int(m["window_days"]), components),
        target=Target(values, Direction(t["direction"]), bool(t.get("inclusive", True))),
        start=goal.start,
        due=goal.due,
        milestones=tuple(specs),
    )
