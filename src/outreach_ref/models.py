"""Request models of the Outreach intake API v1: only the contract's fields, strictly typed.

Every model forbids extra fields and runs in pydantic strict mode (no ``"2"`` for ``2``, no
number for a timestamp). Bodies are validated from the raw JSON bytes
(``model_validate_json``), where strict mode still parses ISO 8601 strings into datetimes.

Error messages never contain the offending value: :func:`safe_errors` keeps only
``loc``, ``msg`` and ``type``, and every custom message below is value-free.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
)

CALL_TYPES = (
    "ipv_assault",
    "ipv_sexual_assault",
    "ipv_threats",
    "ipv_criminal_harassment",
    "ipv_breach_of_order",
    "ipv_dispute_verbal",
    "ipv_other",
)
CallType = Literal[
    "ipv_assault",
    "ipv_sexual_assault",
    "ipv_threats",
    "ipv_criminal_harassment",
    "ipv_breach_of_order",
    "ipv_dispute_verbal",
    "ipv_other",
]

EVENT_TYPES = (
    "received",
    "contact_attempted",
    "contacted",
    "engaged",
    "declined",
    "unreachable",
    "withdrawn",
    "closed",
)

ISO_639_1 = frozenset(
    """
    aa ab ae af ak am an ar as av ay az ba be bg bh bi bm bn bo br bs ca ce ch co cr cs cu cv
    cy da de dv dz ee el en eo es et eu fa ff fi fj fo fr fy ga gd gl gn gu gv ha he hi ho hr
    ht hu hy hz ia id ie ig ii ik io is it iu ja jv ka kg ki kj kk kl km kn ko kr ks ku kv kw
    ky la lb lg li ln lo lt lu lv mg mh mi mk ml mn mr ms mt my na nb nd ne ng nl nn no nr nv
    ny oc oj om or os pa pi pl ps pt qu rm rn ro ru rw sa sc sd se sg si sk sl sm sn so sq sr
    ss st su sv sw ta te tg th ti tk tl tn to tr ts tt tw ty ug uk ur uz ve vi vo wa wo xh yi
    yo za zh zu
    """.split()
)

E164_PATTERN = r"^\+[1-9][0-9]{1,14}$"
EMAIL_PATTERN = r"^[^@\s]+@[^@\s]+\.[^@\s]+$"
# Used in URL paths, so keep it URL-safe.
REFERRAL_ID_PATTERN = r"^[A-Za-z0-9_.:-]{1,128}$"


def _not_blank(value: str) -> str:
    if not value.strip():
        raise ValueError("must not be blank")
    return value


def _iso_639_1(value: str) -> str:
    if value not in ISO_639_1:
        raise ValueError("must be a lower-case ISO 639-1 language code")
    return value


NonBlank = Annotated[str, AfterValidator(_not_blank)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)


class Contact(_Strict):
    given_name: Annotated[NonBlank, Field(max_length=200)]
    family_name: Annotated[NonBlank, Field(max_length=200)]
    phone: Annotated[str, Field(pattern=E164_PATTERN)] | None
    email: Annotated[str, Field(max_length=254, pattern=EMAIL_PATTERN)] | None
    preferred_contact: Literal["phone", "text", "email", "in_person"]
    safe_contact_notes: Annotated[str, Field(max_length=2000)] | None
    language: Annotated[str, AfterValidator(_iso_639_1)]


class Triage(_Strict):
    priority: Literal["urgent", "standard"]
    flags: Annotated[list[Annotated[NonBlank, Field(max_length=64)]], Field(max_length=100)]
    prior_ipv_calls_365d: Annotated[int, Field(ge=0)]


class Consent(_Strict):
    recorded_at: AwareDatetime
    officer_id: Annotated[NonBlank, Field(max_length=64)]


class ReferralIn(_Strict):
    referral_id: Annotated[str, Field(pattern=REFERRAL_ID_PATTERN)]
    agency_code: Annotated[str, Field(pattern=r"^[A-Z]{2,6}$")]
    incident_ref: Annotated[NonBlank, Field(max_length=64)]
    call_received_at: AwareDatetime
    call_type: CallType
    contact: Contact
    triage: Triage
    consent: Consent


def cross_field_errors(referral: ReferralIn) -> list[dict[str, Any]]:
    """Rules spanning several fields (from the extract contract), as value-free errors."""
    errors = []
    if referral.contact.phone is None and referral.contact.email is None:
        errors.append(
            {
                "loc": ["body", "contact", "phone"],
                "msg": "at least one of contact.phone and contact.email is required",
                "type": "value_error",
            }
        )
    if referral.consent.recorded_at < referral.call_received_at:
        errors.append(
            {
                "loc": ["body", "consent", "recorded_at"],
                "msg": "must not be before call_received_at",
                "type": "value_error",
            }
        )
    return errors


class FaultUpdate(BaseModel):
    """Body of ``POST /_admin/faults``: any subset of the fault settings (+ ``seed``)."""

    model_config = ConfigDict(extra="forbid")

    rate_limit_per_second: float | None = None
    rate_limit_burst: int | None = None
    error_rate: float | None = None
    drop_connection_rate: float | None = None
    error_after_commit_rate: float | None = None
    drop_after_commit_rate: float | None = None
    slow_rate: float | None = None
    slow_ms: int | None = None
    latency_ms: int | None = None
    fault_routes: list[str] | None = None
    event_redelivery_rate: float | None = None
    seed: int | None = None


class ClockUpdate(BaseModel):
    """Body of ``POST /_admin/clock``: freeze the server clock at ``now``, shift it by
    ``offset_seconds``, or (both null) return to the real clock."""

    model_config = ConfigDict(extra="forbid")

    now: AwareDatetime | None = None
    offset_seconds: float | None = None


def _safe_loc_part(part: Any) -> Any:
    if isinstance(part, int):
        return part
    text = str(part)
    return text if len(text) <= 64 else text[:64] + "..."


def safe_errors(
    errors: list[dict[str, Any]] | ValidationError, prefix: tuple[str, ...] = ()
) -> list[dict[str, Any]]:
    """``loc`` + ``msg`` + ``type`` only: never the input value, its context or a URL."""
    if isinstance(errors, ValidationError):
        errors = errors.errors(include_url=False, include_context=False, include_input=False)
    out = []
    for error in errors:
        loc = tuple(error.get("loc", ()))
        if prefix and loc[: len(prefix)] != prefix:
            loc = prefix + loc
        msg = str(error.get("msg", "invalid"))
        if error.get("type") == "json_invalid":
            msg = "Invalid JSON"
        out.append(
            {
                "loc": [_safe_loc_part(p) for p in loc],
                "msg": msg,
                "type": str(error.get("type", "value_error")),
            }
        )
    return out
