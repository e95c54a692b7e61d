"""JSONataEvaluator: moto's stub evaluator replaced by jsonata-python, through moto's own prefixing."""

import json
from typing import Any

from redis_migration_ops.local_engine.stepfunctions.jsonata_evaluator import (
    encode_variable_declarations,
    evaluate_jsonata,
)


def _output(described: dict[str, Any]) -> Any:
    assert described["status"] == "SUCCEEDED", (described.get("error"), described.get("cause"))
    return json.loads(described["output"])


def _pass_chain(*states: tuple[str, dict[str, Any]]) -> dict[str, Any]:
    named = dict(states)
    names = list(named)
    for current, following in zip(names, [*names[1:], None], strict=True):
        named[current] = {"Type": "Pass", **named[current]}
        if following:
            named[current]["Next"] = following
        else:
            named[current]["End"] = True
    return {"QueryLanguage": "JSONata", "StartAt": names[0], "States": named}


def test_results_are_json_native() -> None:
    # Given expressions whose jsonata-python results are JList or whole floats
    # When evaluated
    array = evaluate_jsonata("[1, 2].($ * 1.5)")
    whole = evaluate_jsonata("3.0 * 2")
    # Then the values are plain JSON types
    assert type(array) is list
    assert array == [1.5, 3]
    assert type(array[1]) is int
    assert type(whole) is int


def test_string_variables_with_quotes_and_backslashes_survive_the_prefix() -> None:
    # Given a binding whose string value holds a double quote and a backslash
    declarations = encode_variable_declarations({"$v": 'say "hi" \\ bye'})
    # When it prefixes an expression
    result = evaluate_jsonata(f"({declarations}$v)")
    # Then the value comes back unchanged
    assert result == 'say "hi" \\ bye'


def test_states_input_assign_and_functions(run_asl: Any) -> None:
    # Given a chain of Pass states using Assign, $states.input and the common functions
    definition = _pass_chain(
        (
            "Remember",
            {
                "Assign": {"name": "{% $states.input.name %}", "items": "{% $states.input.items %}"},
                "Output": "{% $states.input %}",
            },
        ),
        (
            "Compute",
            {
                "Output": (
                    "{% {'name': $name, 'count': $count($items),"
                    " 'doubled': $map($items, function($v){$v * 2}),"
                    " 'merged': $merge([{'a': 1}, {'b': 2}]), 'asString': $string({'x': 1}),"
                    " 'parsed': $parse('{\"y\": 2}'), 'exists': $exists($states.input.name),"
                    " 'missing': $exists($states.input.nope), 'ratio': 7 / 2, 'sum': 1 + 2,"
                    " 'many': $count($items) > 2 ? 'many' : 'few', 'now': $millis() > 0,"
                    " 'execution': $states.context.Execution.Id, 'uuid': $length($uuid()),"
                    " 'hash': $hash('abc', 'SHA-256')} %}"
                )
            },
        ),
    )
    # When it runs with a name that holds a quote and a backslash
    output = _output(run_asl(definition, {"name": 'Ana "x" \\ y', "items": [1, 2, 3]}))
    # Then every expression evaluated as on AWS
    assert output["name"] == 'Ana "x" \\ y'
    assert output["count"] == 3
    assert output["doubled"] == [2, 4, 6]
    assert output["merged"] == {"a": 1, "b": 2}
    assert output["asString"] == '{"x":1}'
    assert output["parsed"] == {"y": 2}
    assert output["exists"] is True
    assert output["missing"] is False
    assert output["ratio"] == 3.5
    assert output["sum"] == 3
    assert output["many"] == "many"
    assert output["now"] is True
    assert output["execution"].startswith("arn:aws:states:us-east-1:123456789012:execution:")
    assert output["uuid"] == 36
    assert output["hash"] == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"


def test_catch_sees_error_output_and_result(run_asl: Any) -> None:
    # Given a Fail inside a Map caught with Catch Assign/Output reading $states.errorOutput
    definition = {
        "QueryLanguage": "JSONata",
        "StartAt": "Explode",
        "States": {
            "Explode": {
                "Type": "Map",
                "Items": "{% $states.input.items %}",
                "ItemProcessor": {
                    "ProcessorConfig": {"Mode": "INLINE"},
                    "StartAt": "Boom",
                    "States": {
                        "Boom": {
                            "Type": "Fail",
                            "Error": "Kaboom",
                            "Cause": "{% 'item ' & $string($states.input) %}",
                        }
                    },
                },
                "Catch": [
                    {
                        "ErrorEquals": ["Kaboom"],
                        "Assign": {"caught": "{% $states.errorOutput.Error %}"},
                        "Output": (
                            "{% {'error': $states.errorOutput.Error, 'cause': $states.errorOutput.Cause} %}"
                        ),
                        "Next": "Report",
                    }
                ],
                "End": True,
            },
            "Report": {
                "Type": "Pass",
                "Output": "{% $merge([$states.input, {'assigned': $caught}]) %}",
                "End": True,
            },
        },
    }
    # When it runs
    output = _output(run_asl(definition, {"items": [7]}))
    # Then the Catch saw the error name and cause
    assert output == {"error": "Kaboom", "cause": "item 7", "assigned": "Kaboom"}


def test_an_undefined_result_fails_with_a_query_evaluation_error(run_asl: Any) -> None:
    # Given an Output that evaluates to nothing
    definition = _pass_chain(("Nothing", {"Output": "{% $states.input.absent %}"}))
    # When it runs
    described = run_asl(definition, {})
    # Then the execution fails as on AWS
    assert described["status"] == "FAILED"
    assert described["error"] == "States.QueryEvaluationError"
