"""Policy models: which rule families are on and with which parameters.

A policy model is a declarative TOML file in ``models/`` (no Python). Every key is validated
here (pydantic, unknown keys rejected) so a typo in a model or in a scenario override fails
loudly instead of silently using a default.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal, Union

from pydantic import (
    BaseModel,
    ConfigDict,
    Discriminator,
    Field,
    SerializerFunctionWrapHandler,
    Tag,
    ValidationError,
    ValidatorFunctionWrapHandler,
    field_validator,
    model_serializer,
    model_validator,
)
from pydantic_core import PydanticCustomError


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class _Appraisal(_Strict):
    """What every objective kind shares: the appraisal horizon and discount rate of benefits, savings and costs."""

    horizon_years: int = Field(10, ge=1, le=60, description="appraisal horizon from the first envelope year")
    discount_rate: float = Field(0.035, ge=0, lt=1, description="HM Treasury Green Book STPR default")

    @property
    def value_weight(self) -> float:
        """Multiplier of every option's need-weighted benefit (``benefit_weight`` for ``benefit``, else 1)."""
        return 1.0


class BenefitObjective(_Appraisal):
    """Objective ``benefit`` (the default): need-weighted, discounted benefit over an appraisal
    horizon, less spend_weight per £m of national funding, less the fair-share and standardisation
    penalties. Built and recomputed by ``solver/rules/objective.py``."""

    kind: Literal["benefit"] = "benefit"
    benefit_weight: float = Field(1.0, ge=0)
    spend_weight: float = Field(0.0, ge=0, description="points lost per £m of national funding")

    @property
    def value_weight(self) -> float:
        """``benefit_weight``."""
        return self.benefit_weight

    @model_serializer(mode="wrap")
    def _without_kind(self, handler: SerializerFunctionWrapHandler) -> dict[str, Any]:
        """Dumped without ``kind`` (the default): a policy's dump, and so a scenario's content identity,
        stays what it was before objectives had kinds."""
        out = handler(self)
        out.pop("kind", None)
        return out


CRITERIA = ("benefit", "roi", "min-share", "category-0", "category-1", "category-2", "category-3")
"""What an objective can count (``solver/rules/objective.py`` defines each): ``benefit`` need-weighted
discounted benefit; ``roi`` discounted net financial return; ``min-share`` the worst-off system's share
of its need met; ``category-k`` the need-weighted benefit of projects at category-k organisations."""

Criterion = Literal["benefit", "roi", "min-share", "category-0", "category-1", "category-2", "category-3"]


class RoiObjective(_Appraisal):
    """Objective ``roi``: maximise the discounted net financial return of the plan (savings less national and
    local cost, less run costs and withdrawal costs, within the appraisal horizon), less the penalties."""

    kind: Literal["roi"] = "roi"


class MaxMinObjective(_Appraisal):
    """Objective ``max-min``: maximise the worst-off system's share of its need met; then, keeping that share
    within ``tolerance`` of its optimum, maximise total need-weighted benefit less the penalties."""

    kind: Literal["max-min"] = "max-min"
    tolerance: float = Field(0.0, ge=0, le=1, description="fraction of the worst-off share that may be given up")


class LexicographicObjective(_Appraisal):
    """Objective ``lexicographic``: maximise each criterion of ``tiers`` in turn, keeping every earlier tier
    within ``tolerance`` of its optimum; the last tier carries the penalties."""

    kind: Literal["lexicographic"] = "lexicographic"
    tiers: list[Criterion] = Field(min_length=1, max_length=len(CRITERIA))
    tolerance: float = Field(0.0, ge=0, le=1, description="fraction of each earlier tier's optimum that may be "
                                                          "given up for the later tiers")

    @field_validator("tiers")
    @classmethod
    def _distinct(cls, v: list[str]) -> list[str]:
        if len(set(v)) != len(v):
            raise ValueError("each criterion may appear once")
        return v


class WeightedObjective(_Appraisal):
    """Objective ``weighted``: a linear combination of criteria, each divided by its scale when ``normalise``
    (the most it could reach with unlimited money: a share of the attainable), less the penalties (divided
    by the benefit scale when ``normalise``)."""

    kind: Literal["weighted"] = "weighted"
    weights: dict[Criterion, float] = Field(min_length=1)
    normalise: bool = True

    @field_validator("weights")
    @classmethod
    def _usable(cls, v: dict[str, float]) -> dict[str, float]:
        if all(w == 0 for w in v.values()):
            raise ValueError("at least one weight must be non-zero")
        if v.get("min-share", 0.0) < 0:
            raise ValueError("the min-share weight must be >= 0 (the worst-off share can only be rewarded)")
        return v


Objective = BenefitObjective
"""The default objective kind (the name every model had before objectives had kinds)."""

OBJECTIVE_KINDS = ("benefit", "roi", "max-min", "lexicographic", "weighted")
"""Every objective kind, in the order the union below lists them."""


def _objective_kind(value: Any) -> str:
    """The ``kind`` of an ``[objective]`` table; ``benefit`` when it names none (every model and
    scenario written before objectives had kinds)."""
    if isinstance(value, dict):
        return str(value.get("kind", "benefit"))
    return str(getattr(value, "kind", "benefit"))


ObjectiveKind = Annotated[
    Union[  # noqa: UP007
        Annotated[BenefitObjective, Tag("benefit")],
        Annotated[RoiObjective, Tag("roi")],
        Annotated[MaxMinObjective, Tag("max-min")],
        Annotated[LexicographicObjective, Tag("lexicographic")],
        Annotated[WeightedObjective, Tag("weighted")],
    ],
    Discriminator(_objective_kind, custom_error_type="objective_kind",
                  custom_error_message=f"unknown objective kind; choose one of: {', '.join(OBJECTIVE_KINDS)}"),
]
"""The policy's objective: a discriminated union on ``kind`` (default ``benefit``). A new kind is a
class here with ``kind: Literal["<name>"]``, tagged into this union (see docs/rules.md)."""


class Allocation(_Strict):
    """How the plan is made: ``optimise`` (the MIP, with bound and gap) or a rule-based baseline (status
    ``heuristic``, no bound): ``greedy`` funds projects down a ranking (``order``) at the earliest start
    where every rule still holds; ``capitation`` gives each system its fair share of each year's pots
    and funds its own projects down the ranking within it; ``equal-shares`` is the Method of Equal
    Shares on the instance's ballots (participatory budgeting). See docs/policies.md."""

    method: Literal["optimise", "greedy", "capitation", "equal-shares"] = "optimise"
    order: Literal["value-per-cost", "value", "roi", "need"] = "value-per-cost"
    min_benefit: float = Field(0.0, ge=0, description="projects with a lower benefit are never funded by a rule")

    @model_validator(mode="after")
    def _rule_keys_need_a_rule(self) -> Allocation:
        """A rule's parameters set away from their defaults under ``optimise`` would be silently ignored."""
        if self.method == "optimise" and (self.order != "value-per-cost" or self.min_benefit != 0):
            raise ValueError("order and min_benefit apply to a rule-based method (greedy, capitation, equal-shares), "
                             "not to optimise")
        if self.method == "equal-shares" and self.order != "value-per-cost":
            raise ValueError("order does not apply to equal-shares (the method sets its own order)")
        return self


class Need(_Strict):
    """Need weighting: category weight × system need index ** need_index_power."""

    category_weights: dict[Literal["0", "1", "2", "3"], float] = Field(
        default_factory=lambda: {"0": 4.0, "1": 3.0, "2": 1.5, "3": 1.0}
    )
    need_index_power: float = Field(1.0, ge=0, le=5)

    @field_validator("category_weights")
    @classmethod
    def _all_categories(cls, v: dict[str, float]) -> dict[str, float]:
        missing = {"0", "1", "2", "3"} - set(v)
        if missing:
            raise ValueError(f"needs a weight for every category 0-3; missing {sorted(missing)}")
        if any(w < 0 for w in v.values()):
            raise ValueError("category weights must be >= 0")
        return v


class Budget(_Strict):
    """Per-year budgets: carry-over and capital-to-revenue flexibility."""

    carry_over: float = Field(0.0, ge=0, le=1, description="fraction of a year's unspent money carried forward")
    capital_to_revenue: float = Field(
        0.0, ge=0, le=1, description="fraction of a year's capital envelope that may fund revenue"
    )


class RevenueConsequences(_Strict):
    """Who pays a funded project's run_cost from go-live."""

    payer: Literal["system", "centre", "ignore"] = "system"


class MatchFunding(_Strict):
    """Local match funding: the local share comes from the system's own capacity."""

    enabled: bool = True


class Fee(_Strict):
    """Access fee on national funding drawn."""

    rate: float = Field(0.035, ge=0, le=0.5)
    payer: Literal["system", "centre", "split"] = "system"
    system_share: float = Field(0.5, ge=0, le=1, description="system's share of the fee when payer = split")


class FairShare(_Strict):
    """Fair shares of the envelope by weighted population."""

    mode: Literal["off", "floor", "cap", "band", "deviation"] = "off"
    floor: float = Field(0.5, ge=0, le=1, description="floor as a fraction of fair share")
    cap: float = Field(2.0, ge=1, description="cap as a multiple of fair share")
    enforcement: Literal["hard", "penalty"] = "penalty"
    penalty: float = Field(10.0, ge=0, description="points lost per £m of shortfall, excess or deviation")
    basis: Literal["envelope", "spend"] = "envelope"


class Standardisation(_Strict):
    """EPR platform standardisation within a system."""

    mode: Literal["off", "no-divergence", "single", "penalty"] = "no-divergence"
    penalty: float = Field(0.0, ge=0, description="points lost per platform newly introduced in a system")


class Commitments(_Strict):
    """Committed projects (signed MoUs)."""

    mode: Literal["keep", "withdrawable", "ignore"] = "keep"
    withdrawal_pot: Literal["capital", "revenue"] = "revenue"


class Toggle(_Strict):
    """A rule family that is simply on or off."""

    enabled: bool = True


class Policy(_Strict):
    """A complete policy model."""

    name: str
    description: str = ""
    objective: ObjectiveKind = BenefitObjective()
    need: Need = Need()
    budget: Budget = Budget()
    revenue_consequences: RevenueConsequences = RevenueConsequences()
    match_funding: MatchFunding = MatchFunding()
    fee: Fee = Fee()
    fair_share: FairShare = FairShare()
    standardisation: Standardisation = Standardisation()
    commitments: Commitments = Commitments()
    mandatory: Toggle = Toggle()
    dependencies: Toggle = Toggle()
    alternatives: Toggle = Toggle()
    allocation: Allocation = Allocation()

    @model_validator(mode="wrap")
    @classmethod
    def _untagged_errors(cls, data: Any, handler: ValidatorFunctionWrapHandler) -> Policy:
        """Errors inside ``[objective]`` name the key as before kinds existed (``objective.spend_weight``,
        not ``objective.benefit.spend_weight``)."""
        try:
            return handler(data)
        except ValidationError as exc:
            errors = exc.errors(include_url=False)
            if not any(len(e["loc"]) > 1 and e["loc"][0] == "objective" and e["loc"][1] in OBJECTIVE_KINDS
                       for e in errors):
                raise
            out = []
            for e in errors:
                loc = tuple(e["loc"])
                if len(loc) > 1 and loc[0] == "objective" and loc[1] in OBJECTIVE_KINDS:
                    loc = loc[:1] + loc[2:]
                out.append({"type": PydanticCustomError(e["type"], e["msg"]), "loc": loc, "input": e["input"]})
            raise ValidationError.from_exception_data(cls.__name__, out) from None  # type: ignore[arg-type]

    @model_validator(mode="after")
    def _penalty_needs_weight(self) -> Policy:
        if self.standardisation.mode == "penalty" and self.standardisation.penalty <= 0:
            raise ValueError("standardisation.mode = 'penalty' needs standardisation.penalty > 0")
        return self
