"""Which resource definition provisions a resource: criteria matching and the specificity ranking.

Rules (docs/orchestrator.md, "Matching"):

1. Only definitions of the resource's type are considered.
2. A criterion matches when every field it sets equals the resource's context: `app`, `env`, `envType`
   (`--env-type`, the env name by default), `resId`, and `class`. A criterion that sets no `class`
   matches only class `default` — a resource that asks for a class gets a definition written for that
   class or none, never a silent fallback.
3. A definition with no criteria matches nothing (as in Humanitec); write `criteria: [{}]` for a catch-all.
4. A definition's rank is that of its most specific matching criterion. Specificity compares which
   fields are set, in this order of weight: `resId`, `env`, `envType`, `app`, `class` — so a criterion
   naming the resource id beats everything else, and one naming env and app beats one naming only env.
   (Lexicographic on (resId set, env set, envType set, app set, class set).)
5. The highest rank wins. Two definitions with the same highest rank are an error: the choice would
   otherwise depend on file order.
6. The orchestrator's built-in fallback definitions (e.g. for `environment`) are used only when no user
   definition matches.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from strongroom.orchestrator.inputs import Criterion, ResourceDefinition
from strongroom.orchestrator.naming import DEFAULT_CLASS

Rank = tuple[bool, bool, bool, bool, bool]


@dataclass(frozen=True)
class MatchContext:
    app: str
    env: str
    env_type: str
    res_type: str
    res_class: str
    res_id: str

    def describe(self) -> str:
        return f"type {self.res_type!r}, class {self.res_class!r}, id {self.res_id!r}"


def criterion_matches(criterion: Criterion, ctx: MatchContext) -> bool:
    if criterion.app is not None and criterion.app != ctx.app:
        return False
    if criterion.env is not None and criterion.env != ctx.env:
        return False
    if criterion.env_type is not None and criterion.env_type != ctx.env_type:
        return False
    if criterion.res_id is not None and criterion.res_id != ctx.res_id:
        return False
    return (criterion.res_class or DEFAULT_CLASS) == ctx.res_class


def criterion_rank(criterion: Criterion) -> Rank:
    return (
        criterion.res_id is not None,
        criterion.env is not None,
        criterion.env_type is not None,
        criterion.app is not None,
        criterion.res_class is not None,
    )


def definition_rank(definition: ResourceDefinition, ctx: MatchContext) -> Rank | None:
    """The rank of the definition's best matching criterion, or None if none matches."""
    if definition.type != ctx.res_type:
        return None
    ranks = [criterion_rank(cr) for cr in definition.criteria if criterion_matches(cr, ctx)]
    return max(ranks) if ranks else None


class NoMatch(LookupError):
    pass


class Ambiguous(LookupError):
    pass


def select_definition(definitions: Sequence[ResourceDefinition], ctx: MatchContext) -> ResourceDefinition:
    """The definition that provisions the resource; raises NoMatch or Ambiguous with a one-line reason."""
    for builtin in (False, True):
        ranked = [
            (rank, definition)
            for definition in definitions
            if definition.builtin == builtin and (rank := definition_rank(definition, ctx)) is not None
        ]
        if not ranked:
            continue
        best = max(rank for rank, _ in ranked)
        winners = sorted((d for rank, d in ranked if rank == best), key=lambda d: d.name)
        if len(winners) > 1:
            names = ", ".join(f"{d.name!r} ({d.source})" for d in winners)
            raise Ambiguous(
                f"definitions {names} match {ctx.describe()} equally well; make one more specific"
            )
        return winners[0]
    same_type = sorted(d.name for d in definitions if d.type == ctx.res_type and not d.builtin)
    hint = (
        f"definitions of this type ({', '.join(same_type)}) have no criteria matching app {ctx.app!r}, env "
        f"{ctx.env!r}, class {ctx.res_class!r}"
        if same_type
        else "there is no definition of this type"
    )
    raise NoMatch(f"no resource definition matches {ctx.describe()}: {hint}")
