"""Semantic versions as CONTRACT.md section 3 reads them (semver 2.0.0, leading `v`, partial versions)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from flagservice.flags.semver import MAX_SEMVER_LENGTH, SemVer, parse_semver


def v(text: str) -> SemVer:
    version = parse_semver(text)
    assert version is not None, text
    return version


@pytest.mark.parametrize(
    ("text", "core", "pre"),
    [
        ("1.2.3", (1, 2, 3), ()),
        ("0.0.0", (0, 0, 0), ()),
        ("v1.2.3", (1, 2, 3), ()),
        ("1.2", (1, 2, 0), ()),
        ("1", (1, 0, 0), ()),
        ("v2", (2, 0, 0), ()),
        ("1.2-beta", (1, 2, 0), ("beta",)),
        ("1.0.0-alpha.1", (1, 0, 0), ("alpha", "1")),
        ("1.0.0-0A.is.legal", (1, 0, 0), ("0A", "is", "legal")),
        ("1.0.0-x-y-z.--", (1, 0, 0), ("x-y-z", "--")),
        ("1.0.0+20130313144700", (1, 0, 0), ()),
        ("1.0.0-beta+exp.sha.5114f85", (1, 0, 0), ("beta",)),
        ("10.20.30", (10, 20, 30), ()),
        ("99999999999999999999.0.0", (99999999999999999999, 0, 0), ()),
    ],
)
def test_valid_versions_parse(text: str, core: tuple[int, int, int], pre: tuple[str, ...]) -> None:
    version = v(text)

    assert (version.core, version.pre) == (core, pre)


@pytest.mark.parametrize(
    "text",
    [
        "",
        "v",
        "V1.0.0",  # only a lowercase `v` (CONTRACT.md)
        "vv1.0.0",
        "1.",
        "1.2.",
        ".1.2",
        "1.2.3.4",
        "2.0.0.0",
        "01.2.3",
        "1.02.3",
        "1.2.03",
        "1.2.3-",
        "1.2.3-01",
        "1.2.3-alpha..1",
        "1.2.3+",
        "1.2.3+build..1",
        "1.2.3-alpha_beta",
        "-1.2.3",
        " 1.2.3",
        "1.2.3 ",
        "1.2.3\n",
        "1.2.3\u0663",  # ARABIC-INDIC DIGIT THREE
        "\uff11.2.3",  # FULLWIDTH DIGIT ONE
        "not-a-version",
        "latest",
    ],
)
def test_invalid_strings_are_not_versions(text: str) -> None:
    assert parse_semver(text) is None


@pytest.mark.parametrize("value", [None, 1, 1.0, 2.5, True, b"1.2.3", ["1.2.3"], {"v": "1.2.3"}])
def test_non_strings_are_not_versions(value: object) -> None:
    assert parse_semver(value) is None


def test_a_core_number_beyond_the_int_conversion_limit_is_not_a_version_instead_of_an_error() -> None:
    assert parse_semver("1" * 5000 + ".0.0") is None


def test_huge_numeric_prerelease_identifiers_compare_as_numbers() -> None:
    small, large = v("1.0.0-" + "9" * 240), v("1.0.0-1" + "0" * 240)

    assert small < large
    assert small != large


def test_precedence_follows_semver_section_11_example() -> None:
    ordered = [
        "1.0.0-alpha",
        "1.0.0-alpha.1",
        "1.0.0-alpha.beta",
        "1.0.0-beta",
        "1.0.0-beta.2",
        "1.0.0-beta.11",
        "1.0.0-rc.1",
        "1.0.0",
        "2.0.0",
        "2.1.0",
        "2.1.1",
    ]
    versions = [v(text) for text in ordered]

    assert all(a < b for a, b in zip(versions, versions[1:], strict=False))
    assert sorted(reversed(versions)) == versions


@pytest.mark.parametrize(
    ("lower", "higher"),
    [
        ("1.0.0-1", "1.0.0-a"),  # numeric identifiers rank below alphanumeric ones
        ("1.0.0-2", "1.0.0-10"),  # numeric identifiers compare as numbers
        ("1.0.0-B", "1.0.0-a"),  # alphanumeric identifiers compare in ASCII order
        ("1.0.0-rc.1", "1.0.0-rc.1.1"),  # more identifiers rank higher when the rest are equal
        ("1.0.0-rc.1", "1.0.0"),  # a pre-release ranks below its release
        ("0.9.9", "1.0.0-alpha"),
        ("1.9.0", "1.10.0"),
    ],
)
def test_pairwise_precedence(lower: str, higher: str) -> None:
    assert v(lower) < v(higher)
    assert v(higher) > v(lower)
    assert v(lower) != v(higher)


@pytest.mark.parametrize(
    ("a", "b"),
    [
        ("v1.2.3", "1.2.3"),
        ("1", "1.0.0"),
        ("1.2", "1.2.0"),
        ("1.0.0+build.1", "1.0.0"),
        ("1.0.0+build.1", "1.0.0+other"),
        ("1.0.0-alpha+001", "1.0.0-alpha"),
    ],
)
def test_equivalent_spellings_are_equal(a: str, b: str) -> None:
    assert v(a) == v(b)
    assert hash(v(a)) == hash(v(b))
    assert not v(a) < v(b) and not v(b) < v(a)


def test_a_version_never_equals_a_non_version() -> None:
    assert v("1.0.0") != "1.0.0"


numbers = st.integers(min_value=0, max_value=10**6)
identifiers = st.one_of(
    st.integers(min_value=0, max_value=10**6).map(str),
    st.from_regex(r"[A-Za-z-][0-9A-Za-z-]{0,5}", fullmatch=True),
)


@given(numbers, numbers, numbers, numbers, numbers, numbers)
def test_core_ordering_matches_tuple_ordering(a: int, b: int, c: int, x: int, y: int, z: int) -> None:
    left, right = v(f"{a}.{b}.{c}"), v(f"v{x}.{y}.{z}+meta")

    assert (left < right) == ((a, b, c) < (x, y, z))
    assert (left == right) == ((a, b, c) == (x, y, z))


@given(st.lists(identifiers, min_size=1, max_size=4), st.lists(identifiers, min_size=1, max_size=4))
def test_prerelease_ordering_is_total_and_antisymmetric(pre_a: list[str], pre_b: list[str]) -> None:
    a, b = v("1.0.0-" + ".".join(pre_a)), v("1.0.0-" + ".".join(pre_b))

    assert sum([a < b, a == b, a > b]) == 1
    assert a < v("1.0.0") and b < v("1.0.0")


def test_a_version_of_the_maximum_length_parses() -> None:
    text = "1.0.0-" + "a" * (MAX_SEMVER_LENGTH - len("1.0.0-"))

    assert len(text) == MAX_SEMVER_LENGTH and v(text).pre == ("a" * (MAX_SEMVER_LENGTH - 6),)


@pytest.mark.parametrize("text", ["1.0.0-" + "a" * 251, "1." * 200 + "1", "1" * 5000 + ".0.0", "1.0.0+" + "b" * 65536])
def test_anything_longer_than_the_maximum_is_not_a_version(text: str) -> None:
    assert len(text) > MAX_SEMVER_LENGTH and parse_semver(text) is None
