"""ACEBench's judging rules for the normal and special categories, reimplemented.

The rules follow ACEBench's `model_eval/checker.py` and `eval_main.py` as published, including their
leniencies, so our numbers are comparable with its leaderboard:

- the number of calls must equal the answer's; answer keys lose a `_<n>` suffix (parallel calls of one
  function); every called name must be an answer name with the same count;
- per answer call, some model call of that name must pass: required parameters present, no parameter
  outside the spec or outside the answer, the type as the spec declares it (int accepted for float; when the
  answer's own type differs from the spec's, the value is not checked at all);
- strings are normalised (spaces and `,./-_*^` dropped, lower case, `'` as `"`) and the answer must be a
  substring of the output; lists must equal element-wise after normalising strings; dicts must have the
  same keys, nested dicts recursively, leaves compared as `str(answer) in str(output)`; a list of dicts is
  compared pairwise in order. Top-level numbers and booleans are only type-checked (ACEBench has no value
  branch for them);
- several possible answers (a list): any one passing solves the item.

Deviations, each because ACEBench's code cannot mean it: a spec with no properties accepts an empty call
(ACEBench compares the schema to `{}` and so fails every `f()` answer); the spec of an answer is looked up by
exact name before ACEBench's substring match; `objectArray` checks each element (ACEBench's call there has
a missing argument and would crash).
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass
from typing import Any

from evals.acebench.calls import Call
from evals.acebench.schema import spec_parameters

_PY_TYPE: dict[str, type | None] = {
    "string": str,
    "integer": int,
    "int": int,
    "number": int,
    "float": float,
    "boolean": bool,
    "array": list,
    "tuple": list,
    "list": list,
    "list(string)": list,
    "list(enum)": list,
    "objectArray": list,
    "dict": dict,
    "object": dict,
    "any": str,
    "enum": None,  # ACEBench maps it to `enumerate`, which no value has
}
_NESTED = {"array", "tuple", "list(string)", "list(enum)", "object", "objectArray"}
_STRIP = re.compile(r"[ ,./\-_*^]")
_SUFFIX = re.compile(r"_\d+$")


@dataclass
class Check:
    """A verdict and, when failed, ACEBench's error type and our failure category."""

    valid: bool
    error_type: str = ""
    error: str = ""
    category: str = ""  # wrong_function_name | wrong_argument | missing_call | unexpected_call | no_answer


OK = Check(True)


def standardize(s: str) -> str:
    return _STRIP.sub("", s).lower().replace("'", '"')


def _bad(error_type: str, error: str, category: str = "wrong_argument") -> Check:
    return Check(False, error_type, error, category)


def _truthy(v: Any) -> Any:
    return {"true": True, "false": False}.get(v, v) if isinstance(v, str) else v


def type_check(value: Any, answer: Any, expected: type | None, nested: type | None) -> tuple[bool, bool]:
    """(valid, is_variable) as ACEBench's type_checker decides; is_variable means "skip the value check"."""
    answer_type = type(answer) if answer != "" else None
    is_variable = answer_type is not None and answer_type is not expected
    value = _truthy(value)
    if expected is not None and type(value) is expected:
        if nested is None:
            return True, is_variable
        for alt in answer if isinstance(answer, list) else []:
            if not isinstance(alt, list) or all(type_check(v, alt, nested, None)[0] for v in value):
                return True, is_variable
    if answer_type is not None and (type(value) is answer_type or answer == value):
        return True, True
    return False, is_variable


def string_check(value: str, answer: str, exact: bool) -> bool:
    got, want = standardize(value), standardize(answer)
    return got == want if exact else want in got


def list_check(value: list, answer: list) -> bool:
    norm = [standardize(v) if isinstance(v, str) else v for v in value]
    return norm == [standardize(v) if isinstance(v, str) else v for v in answer]


def dict_check(value: Any, answer: dict) -> bool:
    if not isinstance(value, dict) or len(value) != len(answer):
        return False
    for key, val in value.items():
        val = _truthy(val)
        if key not in answer:
            return False
        want = answer[key]
        if isinstance(want, dict):
            if not dict_check(val, want):
                return False
            continue
        got = standardize(val) if isinstance(val, str) else val
        if isinstance(want, str):
            want = standardize(want)
        if str(want) not in str(got):
            return False
    return True


def list_dict_check(value: list, answer: list) -> bool:
    if not isinstance(answer, list) or len(value) != len(answer):
        return False
    return all(isinstance(a, dict) and dict_check(v, a) for v, a in zip(value, answer, strict=True))


def find_spec(functions: list[dict[str, Any]], name: str) -> dict[str, Any] | None:
    for spec in functions:
        if spec.get("name") == name:
            return spec
    return next((s for s in functions if s.get("name") and s["name"] in name), None)


def _value_check(
    value: Any, want: Any, type_name: str, expected: type | None, nested: type | None, exact_strings: bool
) -> bool:
    if expected is dict:
        return isinstance(want, dict) and dict_check(value, want)
    if expected is list and nested is dict:
        return list_dict_check(value, want)
    if expected is str:
        return string_check(value, want, exact_strings)
    if expected is list:
        return list_check(value, want)
    return True


def function_check(
    spec: dict[str, Any] | None, args: dict[str, Any], answer: dict[str, Any], exact_strings: bool = False
) -> Check:
    """One model call against one answer call of the same name (ACEBench's simple_function_checker)."""
    schema = spec_parameters(spec or {})
    props = schema.get("properties") or {}
    if not args or not props:
        if not args and not props:
            return OK
        return _bad(
            "wrong_param",
            "call arguments do not fit a function without parameters" if args else "no arguments given",
        )
    if answer == {}:
        return _bad("wrong_param", "the answer expects no arguments")
    for req in schema.get("required") or []:
        if req not in args:
            return _bad("lack_args", f"lack required_params: {req}")
    for param, value in args.items():
        if param not in props or param not in answer:
            return _bad("addition_args", f"addition params: {param}")
        type_name = (props[param] or {}).get("type", "any")
        expected = _PY_TYPE.get(type_name, str)
        nested = None
        if type_name in _NESTED:
            item_type = ((props[param] or {}).get("items") or {}).get("type")
            if item_type is None:
                item_type = "string" if "string" in type_name else "enum" if "enum" in type_name else "dict"
            nested = _PY_TYPE.get(item_type, str)
        if isinstance(value, tuple):
            value = list(value)
        if type_name == "float" and type(value) is int:
            value = float(value)
        want = answer[param]
        valid, is_variable = type_check(value, want, expected, nested)
        if not valid:
            return _bad(
                "type_error",
                f"wrong type for parameter ({param}): expected {type_name}, got {type(value).__name__}",
            )
        if not is_variable and not _value_check(value, want, type_name, expected, nested, exact_strings):
            return _bad(
                "value_error", f"wrong value for parameter ({param}): expected {want!r}, got {value!r}"
            )
    return OK


def normal_check(
    functions: list[dict[str, Any]], calls: list[Call], answer: dict[str, Any], exact_strings: bool = False
) -> Check:
    """The model's calls against one possible answer (ACEBench's normal_checker)."""
    if len(calls) != len(answer):
        return Check(
            False,
            "wrong functions number",
            f"{len(calls)} calls, the answer has {len(answer)}",
            "missing_call" if len(calls) < len(answer) else "unexpected_call",
        )
    wanted = [(_SUFFIX.sub("", name), args) for name, args in answer.items()]
    made = Counter(next(iter(c)) for c in calls)
    need = Counter(name for name, _ in wanted)
    extra = sorted(set(made) - set(need))
    if extra:
        return _bad("function_mismatch", f"function not in the answer: {extra[0]}", "wrong_function_name")
    if set(need) - set(made):
        return _bad(
            "function_mismatch",
            f"function not called: {sorted(set(need) - set(made))[0]}",
            "wrong_function_name",
        )
    for name in need:
        if made[name] != need[name]:
            cat = "missing_call" if made[name] < need[name] else "unexpected_call"
            return _bad("function_mismatch", f"{name} called {made[name]} times, expected {need[name]}", cat)
    for name, want in wanted:
        spec = find_spec(functions, name)
        result = _bad("function_mismatch", f"no call of {name}", "wrong_function_name")
        for call in calls:
            if name in call:
                result = function_check(
                    spec, call[name], want if isinstance(want, dict) else {}, exact_strings
                )
                if result.valid:
                    break
        if not result.valid:
            return result
    return OK


def alternatives(answer: Any) -> list[dict[str, Any]]:
    """A possible answer as its list of alternatives."""
    alts = answer if isinstance(answer, list) else [answer]
    return [a for a in alts if isinstance(a, dict)]


def check_normal(functions: list[dict[str, Any]], calls: list[Call], answer: Any) -> Check:
    """Solved when any alternative passes; otherwise the first alternative's failure (as ACEBench reports)."""
    first: Check | None = None
    for alt in alternatives(answer):
        result = normal_check(functions, calls, alt)
        if result.valid:
            return OK
        first = first or result
    return first or _bad("no_answer", "item has no usable possible answer", "no_answer")


INCOMPLETE_PHRASE = "Missing necessary parameters"
ERROR_PHRASE = "There is incorrect value"
IRRELEVANT_PHRASE = "the limitations of the function"


def check_special(subcategory: str, text: str, answer: Any) -> Check:
    """ACEBench's special rules, which are text matches on the model's reply:

    - incomplete: the reply contains "Missing necessary parameters", the function name and every missing
      parameter name of the answer;
    - error_param: the reply contains "There is incorrect value" and every wrong value of the answer;
    - irrelevant: the reply contains "the limitations of the function".
    A reply that makes a function call is judged by its text like any other (it will lack the phrases); the
    caller marks it `unexpected_call`.
    """
    if subcategory == "irrelevant":
        if IRRELEVANT_PHRASE not in text:
            return Check(
                False, "error_detection", "did not say the functions cannot solve it", "error_detection"
            )
        return OK
    phrase = INCOMPLETE_PHRASE if subcategory == "incomplete" else ERROR_PHRASE
    if not isinstance(answer, dict):
        return _bad("no_answer", "item has no usable possible answer", "no_answer")
    for name, values in answer.items():
        if phrase not in text:
            return Check(False, "error_detection", f"reply lacks {phrase!r}", "error_detection")
        if subcategory == "incomplete" and name not in text:
            return Check(False, "error_correction", f"reply does not name {name}", "error_correction")
        for value in values if isinstance(values, list) else [values]:
            if str(value) not in text:
                return Check(False, "error_correction", f"reply does not name {value!r}", "error_correction")
    return OK
