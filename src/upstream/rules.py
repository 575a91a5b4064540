"""Row-level rules of the extract contract: the single source for the GX suite and quarantine.

Each rule is a SQL predicate over the typed staging table (include/sql/validate/typed_table.sql)
that is TRUE when a row breaks it. The GX suite runs one expectation per rule; quarantine
evaluates the same predicates in one set-based pass. Predicates are code, never data: the only
file-specific values (agency, time bound, extract year) are columns of the typed table.
"""

from __future__ import annotations

from dataclasses import dataclass

from upstream.contract import COLUMNS, ENUMS, REQUIRED_COLUMNS


@dataclass(frozen=True)
class Rule:
    name: str
    column: str
    description: str
    failing: str  # SQL boolean, TRUE = the row breaks the rule


def _in_list(values: tuple[str, ...]) -> str:
    # Enum values are constants of the contract (letters, digits, underscores only).
    for v in values:
        if not v.replace("_", "").isalnum():
            raise ValueError(f"unexpected enum literal {v!r}")
    return "(" + ", ".join(f"'{v}'" for v in values) + ")"


def _build_rules() -> tuple[Rule, ...]:
    rules: list[Rule] = []
    add = rules.append
    for col in REQUIRED_COLUMNS:
        add(Rule(f"{col}.required", col, f"{col} must be present", f"{col} IS NULL"))
    for col, (_, max_len) in COLUMNS.items():
        add(Rule(f"{col}.max_length", col, f"{col} is at most {max_len} characters",
                 f"length({col}) > {max_len}"))
    for col, values in ENUMS.items():
        add(Rule(f"{col}.enum", col, f"{col} is one of: {', '.join(values)}",
                 f"{col} IS NOT NULL AND {col} NOT IN {_in_list(values)}"))
    add(Rule("agency_code.format", "agency_code", "2-6 upper-case letters",
             "agency_code !~ '^[A-Z][A-Z]+$' OR length(agency_code) > 6"))
    add(Rule("agency_code.matches_file", "agency_code", "equals the file's agency",
             "agency_code ~ '^[A-Z]+$' AND agency_code <> expected_agency"))
    add(Rule("incident_id.format", "incident_id", "1-32 characters of A-Z 0-9 -",
             "incident_id !~ '^[A-Z0-9-]+$' OR length(incident_id) > 32"))
    add(Rule("incident_id.unique_in_file", "incident_id", "unique within the file",
             "incident_occurrences > 1"))
    add(Rule("record_version.integer_min_1", "record_version", "an integer from 1 to 2147483647",
             "record_version IS NOT NULL"
             " AND coalesce(record_version_int NOT BETWEEN 1 AND 2147483647, true)"))
    for col, ts in (("call_received_at", "call_received_ts"), ("cleared_at", "cleared_ts"),
                    ("consent_recorded_at", "consent_recorded_ts")):
        add(Rule(f"{col}.timestamp_with_offset", col,
                 "an ISO 8601 timestamp with a UTC offset",
                 f"{col} IS NOT NULL AND {ts} IS NULL"))
    add(Rule("call_received_at.range", "call_received_at",
             "not before 2000 and not after the extract was generated",
             "call_received_ts < TIMESTAMPTZ '2000-01-01 00:00:00+00' OR call_received_ts > latest_allowed_at"))
    add(Rule("cleared_at.not_before_call", "cleared_at", "cleared_at >= call_received_at",
             "cleared_ts < call_received_ts"))
    add(Rule("cleared_at.not_in_future", "cleared_at", "not after the extract was generated",
             "cleared_ts > latest_allowed_at"))
    add(Rule("consent_recorded_at.not_before_call", "consent_recorded_at",
             "consent_recorded_at >= call_received_at", "consent_recorded_ts < call_received_ts"))
    add(Rule("consent_recorded_at.required_for_consent_answer", "consent_recorded_at",
             "present when consent is given, declined or withdrawn",
             "consent_status IN ('given', 'declined', 'withdrawn') AND consent_recorded_at IS NULL"))
    add(Rule("charges_laid.integer_min_0", "charges_laid", "an integer from 0 to 2147483647",
             "charges_laid IS NOT NULL"
             " AND coalesce(charges_laid_int NOT BETWEEN 0 AND 2147483647, true)"))
    add(Rule("charges_laid.matches_clearance", "charges_laid",
             "charges_laid > 0 exactly when clearance_status is cleared_by_charge",
             "(charges_laid_int > 0) <> (clearance_status = 'cleared_by_charge')"))
    add(Rule("consent_status.not_applicable_iff_charged", "consent_status",
             "not_applicable exactly when clearance_status is cleared_by_charge",
             "(consent_status = 'not_applicable') <> (clearance_status = 'cleared_by_charge')"))
    for col, parsed in (("children_present", "children_present_bool"),
                        ("substance_involved", "substance_involved_bool")):
        add(Rule(f"{col}.boolean", col, "true or false",
                 f"{col} IS NOT NULL AND {parsed} IS NULL"))
    for col in ("consent_officer_id", "victim_given_name", "victim_family_name",
                "victim_preferred_contact"):
        add(Rule(f"{col}.required_when_consent_given", col, "present when consent is given",
                 f"consent_status = 'given' AND {col} IS NULL"))
    add(Rule("victim_phone.required_with_email_when_consent_given", "victim_phone",
             "phone or email present when consent is given",
             "consent_status = 'given' AND victim_phone IS NULL AND victim_email IS NULL"))
    add(Rule("victim_birth_year.range", "victim_birth_year", "an integer from 1900 to the extract year",
             "victim_birth_year IS NOT NULL AND coalesce(victim_birth_year_int NOT BETWEEN 1900 AND extract_year, true)"))
    add(Rule("victim_phone.e164", "victim_phone", "E.164, e.g. +15195551234",
             "victim_phone !~ '^[+][1-9][0-9]+$' OR length(victim_phone) NOT BETWEEN 9 AND 16"))
    add(Rule("victim_email.format", "victim_email", "a plausible address x@y.z",
             r"victim_email !~ '^[^@\s]+@[^@\s]+[.][^@\s]+$'"))
    add(Rule("victim_language.iso639_1", "victim_language", "a two-letter ISO 639-1 code",
             "victim_language !~ '^[a-z][a-z]$'"))
    add(Rule("victim_postal_code.format", "victim_postal_code", "a Canadian postal code, e.g. N9A 1A1",
             "victim_postal_code !~ '^[ABCEGHJ-NPRSTVXY][0-9][ABCEGHJ-NPRSTV-Z] ?[0-9][ABCEGHJ-NPRSTV-Z][0-9]$'"))
    for col in ("patrol_zone", "victim_person_id", "address_id", "responding_officer_id",
                "accused_person_id", "consent_officer_id"):
        add(Rule(f"{col}.no_control_characters", col, "no control characters or blank value",
                 f"{col} ~ '[[:cntrl:]]' OR btrim({col}) = ''"))
    names = [r.name for r in rules]
    if len(names) != len(set(names)):
        raise AssertionError("duplicate rule names")
    return tuple(rules)


RULES: tuple[Rule, ...] = _build_rules()
RULES_BY_NAME = {r.name: r for r in RULES}
