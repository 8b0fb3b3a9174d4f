"""The console's value conversions (values.js, api.js) in Node: what people type becomes the JSON the API gets.

A string never becomes a number unless it reads as one, a quoted number stays text, a float stays a float
(`1.0`, never `1`), and every condition operand reads back as what it was.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from typing import Any

import pytest

from flagservice.console.routes import STATIC_DIR

pytestmark = pytest.mark.timeout(60)
# JSON.parse's source text (how api.js tells 1.0 from 1): shipped in browsers, behind this flag in Node 20.
NODE_FLAGS = ["--harmony-json-parse-with-source"]

SCRIPT = """
const { parseJson, stringify } = await import("%(static)s/api.js");
const { operand, operandText, variantValue } = await import("%(static)s/values.js");
const cases = JSON.parse(process.argv[1]);
const out = {};
out.operands = cases.operands.map(([op, text]) => stringify(operand(op, text)));
out.roundTrips = cases.conditions.map((text) => {
  const condition = parseJson(text);
  const again = operand(condition.operator, operandText(condition));
  return [operandText(condition), stringify({ ...condition, ...again })];
});
out.variants = cases.variants.map(([text, type]) => {
  try { return stringify(variantValue(text, type)); } catch (error) { return "error: " + error.message; }
});
out.documents = cases.documents.map((text) => stringify(parseJson(text)));
console.log(JSON.stringify(out));
"""


def run_node(cases: dict[str, Any]) -> dict[str, Any]:
    node = shutil.which("node")
    if node is None:
        pytest.fail("node is not installed: the console's value tests need Node 20+")
    script = SCRIPT % {"static": STATIC_DIR.as_uri()}
    done = subprocess.run(
        [node, *NODE_FLAGS, "--input-type=module", "-e", script, json.dumps(cases)],
        capture_output=True, text=True, timeout=30,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)  # type: ignore[no-any-return]


def test_condition_operands_are_read_as_people_type_them() -> None:
    operands = [
        ("eq", "42"), ("eq", '"42"'), ("eq", "DE"), ("eq", "true"), ("eq", "1.5"), ("eq", "2.0"), ("eq", ' "a b" '),
        ("in", "DE, FR"), ("in", "1, 2, x"), ("in", '["a,b", "c"]'), ("in", ""),
        ("starts_with", "10"), ("semver_gt", "1.2.0"), ("contains", '"quoted"'), ("gt", "18"), ("gte", "0.5"),
    ]  # fmt: skip

    got = run_node({"operands": operands, "conditions": [], "variants": [], "documents": []})["operands"]

    assert [json.loads(text) for text in got] == [
        {"value": 42}, {"value": "42"}, {"value": "DE"}, {"value": True}, {"value": 1.5}, {"value": 2.0},
        {"value": "a b"}, {"values": ["DE", "FR"]}, {"values": [1, 2, "x"]}, {"values": ["a,b", "c"]},
        {"values": []}, {"value": "10"}, {"value": "1.2.0"}, {"value": "quoted"}, {"value": 18}, {"value": 0.5},
    ]  # fmt: skip
    assert got[5] == '{"value":2.0}'  # a float stays a float on the wire


def test_every_condition_shows_as_text_that_reads_back_as_the_same_condition() -> None:
    conditions = [
        {"attribute": "a", "operator": "eq", "value": "42"},
        {"attribute": "a", "operator": "eq", "value": 42},
        {"attribute": "a", "operator": "eq", "value": "true"},
        {"attribute": "a", "operator": "eq", "value": ""},
        {"attribute": "a", "operator": "eq", "value": " padded "},
        {"attribute": "a", "operator": "neq", "value": 1.0},
        {"attribute": "a", "operator": "in", "values": ["DE", "FR"]},
        {"attribute": "a", "operator": "in", "values": ["a,b", "[x"]},
        {"attribute": "a", "operator": "not_in", "values": ["1", 1, True]},
        {"attribute": "a", "operator": "ends_with", "value": "42"},
        {"attribute": "a", "operator": "semver_lt", "value": "v2"},
        {"attribute": "a", "operator": "lte", "value": 2.5},
    ]
    texts = [json.dumps(condition) for condition in conditions]

    got = run_node({"operands": [], "conditions": texts, "variants": [], "documents": []})["roundTrips"]

    assert [json.loads(after) for _, after in got] == conditions
    assert got[5][1].endswith('"value":1.0}')
    assert [shown for shown, _ in got][:3] == ['"42"', "42", '"true"']


def test_variant_values_follow_the_flags_type() -> None:
    variants = [
        ("1", "float"), ("0.25", "float"), ("1", "integer"), ("1.5", "integer"), ("abc", "float"), ("true", "boolean"),
        (" spaced ", "string"), ('{"color": "blue", "ratio": 1.0}', "object"), ("[1, 2]", "object"), ("3", "object"),
    ]  # fmt: skip

    got = run_node({"operands": [], "conditions": [], "variants": variants, "documents": []})["variants"]

    assert got == [
        "1.0", "0.25", "1", "error: a whole number, like 3", "error: a number, like 0.5", "true", '" spaced "',
        '{"color":"blue","ratio":1.0}', "[1,2]", "error: a JSON object or array",
    ]  # fmt: skip


def test_a_flag_read_and_written_back_keeps_every_number_as_it_was() -> None:
    documents = ['{"variants":{"low":1.0,"high":2.5,"big":1e+21},"version":3}', '{"n":[0,-1,1.10]}']

    got = run_node({"operands": [], "conditions": [], "variants": [], "documents": documents})["documents"]

    assert got == ['{"variants":{"low":1.0,"high":2.5,"big":1e+21},"version":3}', '{"n":[0,-1,1.1]}']
