"""engine/form_formats.py: the Chinese identifier formats a form schema may name."""

from __future__ import annotations

import pytest
from jsonschema import Draft202012Validator

from engine import identifiers
from engine.form_formats import FORMAT_CHECKER, FORMATS

SCHEMA = {
    "type": "object",
    "properties": {
        "id_number": {"type": "string", "format": "cn-resident-id"},
        "uscc": {"type": "string", "format": "cn-uscc"},
        "mobile": {"type": "string", "format": "cn-mobile"},
        "email": {"type": "string", "format": "email"},
        "start": {"type": "string", "format": "date"},
    },
}


def resident_id(born: str = "19900101") -> str:
    """A built resident ID number (not a real person's) with its computed check digit."""
    first17 = "110101" + born + "123"
    return first17 + identifiers.resident_id_check_digit(first17)


def uscc() -> str:
    """A built unified social credit code with its computed check character."""
    body = "91110108MA01ABCD1"
    return body + identifiers.uscc_check_char(body)


def errors(data: dict) -> dict[str, str]:
    validator = Draft202012Validator(SCHEMA, format_checker=FORMAT_CHECKER)
    return {"/".join(map(str, e.absolute_path)): e.message for e in validator.iter_errors(data)}


def wrong_check(value: str) -> str:
    return value[:-1] + ("0" if value[-1] != "0" else "1")


def test_valid_identifiers_pass():
    """Built resident ID, social credit code and a spaced +86 mobile raise no error."""
    data = {"id_number": resident_id(), "uscc": uscc(), "mobile": "+86 138-0000-0000"}
    assert errors(data) == {}


def test_a_wrong_resident_id_check_digit_reads_as_the_plain_reason():
    """The form error says which check digit is right, not "… is not a 'cn-resident-id'"."""
    value = resident_id()
    assert errors({"id_number": wrong_check(value)}) == {
        "id_number": f"the check digit should be {value[-1]}"
    }


def test_an_impossible_birth_date_reads_as_the_plain_reason():
    """A 13th month is named as not a real date."""
    assert errors({"id_number": resident_id(born="19991332")}) == {
        "id_number": "the birth date 19991332 is not a real date"
    }


def test_a_wrong_social_credit_check_character_reads_as_the_plain_reason():
    """The form error names the right check character."""
    value = uscc()
    assert errors({"uscc": wrong_check(value)}) == {
        "uscc": f"the check character should be {value[-1]}"
    }


def test_a_forbidden_letter_in_a_social_credit_code_is_named():
    """A letter O (easily typed for zero) is pointed at."""
    value = "91110108MA01O" + "BCD10"
    assert errors({"uscc": value})["uscc"].startswith("character 13 (O) is not allowed")


def test_a_landline_in_the_mobile_field_reads_as_the_plain_reason():
    """A ten-digit number is refused with its digit count."""
    assert errors({"mobile": "010 8888 888"}) == {"mobile": "a mobile number has 11 digits, not 10"}


def test_every_problem_of_a_submission_is_reported_at_once():
    """Three bad fields give three errors, one per field."""
    data = {"id_number": "123", "uscc": "ABC", "mobile": "12345"}
    assert set(errors(data)) == {"id_number", "uscc", "mobile"}


def test_the_standard_formats_of_draft_2020_12_are_still_checked():
    """The copy keeps email and date checking."""
    assert set(errors({"email": "not an address", "start": "2026-02-30"})) == {"email", "start"}


@pytest.mark.parametrize("name", ["cn-resident-id", "cn-uscc", "cn-mobile"])
def test_non_strings_are_left_to_the_type_keyword(name):
    """Like the standard formats, ours ignore numbers; `type` is what refuses them."""
    validator = Draft202012Validator({"format": name}, format_checker=FORMAT_CHECKER)
    assert validator.is_valid(13800000000)


def test_every_format_is_registered_and_documented():
    """FORMATS documents exactly the formats the checker adds."""
    assert set(FORMATS) == {"cn-resident-id", "cn-uscc", "cn-mobile"}
    assert set(FORMATS) <= set(FORMAT_CHECKER.checkers)
    assert all(FORMATS.values())


def test_the_draft_2020_12_default_checker_is_left_untouched():
    """Adding our formats does not change jsonschema's own checker other code may use."""
    assert "cn-resident-id" not in Draft202012Validator.FORMAT_CHECKER.checkers
