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


class BenefitObjective(_Strict):
    """Objective ``benefit`` (the default): need-weighted, discounted benefit over an appraisal
    horizon, less spend_weight per £m of national funding, less the fair-share and standardisation
    penalties. Built and recomputed by ``solver/rules/objective.py``."""

    kind: Literal["benefit"] = "benefit"
    benefit_weight: float = Field(1.0, ge=0)
    spend_weight: float = Field(0.0, ge=0, description="points lost per £m of national funding")
    horizon_years: int = Field(10, ge=1, le=60, description="appraisal horizon from the first envelope year")
    discount_rate: float = Field(0.035, ge=0, lt=1, description="HM Treasury Green Book STPR default")

    @model_serializer(mode="wrap")
    def _without_kind(self, handler: SerializerFunctionWrapHandler) -> dict[str, Any]:
        """Dumped without ``kind`` (the default): a policy's dump, and so a scenario's content identity,
        stays what it was before objectives had kinds."""
        out = handler(self)
        out.pop("kind", None)
        return out


Objective = BenefitObjective
"""The default objective kind (the name every model had before objectives had kinds)."""

OBJECTIVE_KINDS = ("benefit",)
"""Every objective kind, in the order the union below lists them."""


def _objective_kind(value: Any) -> str:
    """The ``kind`` of an ``[objective]`` table; ``benefit`` when it names none (every model and
    scenario written before objectives had kinds)."""
    if isinstance(value, dict):
        return str(value.get("kind", "benefit"))
    return str(getattr(value, "kind", "benefit"))


ObjectiveKind = Annotated[
    Union[Annotated[BenefitObjective, Tag("benefit")]],  # noqa: UP007 (a union of one kind, for now)
    Discriminator(_objective_kind, custom_error_type="objective_kind",
                  custom_error_message=f"unknown objective kind; choose one of: {', '.join(OBJECTIVE_KINDS)}"),
]
"""The policy's objective: a discriminated union on ``kind`` (default ``benefit``). A new kind is a
class here with ``kind: Literal["<name>"]``, tagged into this union (see docs/rules.md)."""


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
