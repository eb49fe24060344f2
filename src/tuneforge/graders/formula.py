"""`calculate_output` of a multi grader: a small arithmetic language read with Python's `ast` and
evaluated node by node (never `eval`): numbers, sub-grader names, + - * / **, unary minus, parentheses,
and min max abs floor ceil sqrt exp log. Anything else is refused with a message."""

from __future__ import annotations

import ast
import math
import operator

from tuneforge.graders.errors import GraderError

MAX_CHARS = 1000
_BINARY = {ast.Add: operator.add, ast.Sub: operator.sub, ast.Mult: operator.mul, ast.Div: operator.truediv,
           ast.Pow: operator.pow}
_UNARY = {ast.USub: operator.neg, ast.UAdd: operator.pos}
FUNCTIONS = {"min": min, "max": max, "abs": abs, "floor": math.floor, "ceil": math.ceil, "sqrt": math.sqrt,
             "exp": math.exp, "log": math.log}
_ALLOWED = "numbers, grader names, + - * / **, parentheses and " + ", ".join(FUNCTIONS)
PARAM = "grader.calculate_output"


def _bad(message: str) -> GraderError:
    return GraderError(f"calculate_output: {message} Allowed: {_ALLOWED}.", PARAM)


def parse(formula: str, names: set[str]) -> ast.Expression:
    """The checked tree of `formula`, whose variables must be among `names`."""
    if not isinstance(formula, str) or not formula.strip():
        raise _bad("must be a non-empty formula string.")
    if len(formula) > MAX_CHARS:
        raise _bad(f"is {len(formula)} characters; the limit is {MAX_CHARS}.")
    try:
        tree = ast.parse(formula.strip(), mode="eval")
    except SyntaxError as exc:
        raise _bad(f"is not a valid formula ({exc.msg}).") from None
    except (RecursionError, MemoryError):
        raise _bad("is nested too deeply.") from None
    for node in ast.walk(tree):
        _check(node, names)
    return tree


def _check(node: ast.AST, names: set[str]) -> None:
    if isinstance(node, (ast.Expression, ast.Load)) or type(node) in _BINARY or type(node) in _UNARY:
        return
    if isinstance(node, ast.BinOp):
        if type(node.op) not in _BINARY:
            raise _bad(f"the operator {type(node.op).__name__} is not allowed.")
    elif isinstance(node, ast.UnaryOp):
        if type(node.op) not in _UNARY:
            raise _bad(f"the operator {type(node.op).__name__} is not allowed.")
    elif isinstance(node, ast.Constant):
        if isinstance(node.value, bool) or not isinstance(node.value, (int, float)):
            raise _bad(f"the constant {node.value!r} is not a number.")
    elif isinstance(node, ast.Name):
        if node.id not in names and node.id not in FUNCTIONS:
            known = ", ".join(sorted(names)) or "none"
            raise _bad(f"'{node.id}' is not one of the graders ({known}).")
    elif isinstance(node, ast.Call):
        if not isinstance(node.func, ast.Name) or node.func.id not in FUNCTIONS or node.keywords:
            raise _bad(f"the call '{ast.unparse(node)}' is not allowed.")
        if not node.args:
            raise _bad(f"'{node.func.id}' needs an argument.")
    else:
        raise _bad(f"'{ast.unparse(node)}' ({type(node).__name__}) is not allowed.")


def evaluate(tree: ast.Expression, values: dict[str, float]) -> float:
    try:
        result = float(_eval(tree.body, values))
    except ZeroDivisionError:
        raise _bad("divides by zero for these scores.") from None
    except (OverflowError, ValueError, TypeError, RecursionError) as exc:
        raise _bad(f"cannot be computed for these scores ({exc}).") from None
    if not math.isfinite(result):
        raise _bad("is not a finite number for these scores.")
    return result


def _eval(node: ast.AST, values: dict[str, float]) -> float:
    if isinstance(node, ast.Constant):
        return node.value
    if isinstance(node, ast.Name):
        if node.id not in values:
            raise TypeError(f"'{node.id}' is a function; call it, e.g. {node.id}(a, b)")
        return values[node.id]
    if isinstance(node, ast.UnaryOp):
        return _UNARY[type(node.op)](_eval(node.operand, values))
    if isinstance(node, ast.BinOp):
        left, right = _eval(node.left, values), _eval(node.right, values)
        if isinstance(node.op, ast.Pow) and abs(right) > 100:
            raise OverflowError("an exponent over 100")
        return _BINARY[type(node.op)](left, right)
    assert isinstance(node, ast.Call)
    return FUNCTIONS[node.func.id](*(_eval(a, values) for a in node.args))
