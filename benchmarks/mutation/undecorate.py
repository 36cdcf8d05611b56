"""The same code without the decorators that mutmut will not look inside.

mutmut 3 mutates no function that carries a decorator other than ``@staticmethod`` or
``@classmethod``. In ``core`` that would leave out most of the math: every ``@torch.no_grad()``
method (the SLR and ADMM updates, hard-pruning, masking) and every ``@property`` (the layer
budget). The scratch copy that mutmut mutates is rewritten into the equivalent undecorated form:

* ``@torch.no_grad()`` on a function becomes a ``with torch.no_grad():`` block around its body
  (the docstring stays first);
* ``@property`` on ``name`` becomes a method ``_fget_name`` and ``name = property(_fget_name)``.

Other decorators (``@abstractmethod``, ``@classmethod``, class decorators) are left as they are.
"""
from __future__ import annotations

import libcst as cst

__all__ = ["undecorate"]

_NO_GRAD = "torch.no_grad()"


def _is_docstring(statement: cst.BaseStatement) -> bool:
    return (
        isinstance(statement, cst.SimpleStatementLine)
        and len(statement.body) == 1
        and isinstance(statement.body[0], cst.Expr)
        and isinstance(statement.body[0].value, (cst.SimpleString, cst.ConcatenatedString))
    )


class _Undecorate(cst.CSTTransformer):
    def __init__(self) -> None:
        super().__init__()
        self._module = cst.Module([])

    def leave_FunctionDef(self, original: cst.FunctionDef, updated: cst.FunctionDef):
        decorators = [self._module.code_for_node(d.decorator).strip() for d in updated.decorators]
        if decorators == [_NO_GRAD]:
            body = list(updated.body.body)
            head = body[:1] if body and _is_docstring(body[0]) else []
            block = cst.With(items=[cst.WithItem(cst.parse_expression(_NO_GRAD))], body=cst.IndentedBlock(body=body[len(head):]))
            return updated.with_changes(decorators=[], body=updated.body.with_changes(body=[*head, block]))
        if decorators == ["property"]:
            name = updated.name.value
            getter = updated.with_changes(decorators=[], name=cst.Name(f"_fget_{name}"))
            return cst.FlattenSentinel([getter, cst.parse_statement(f"{name} = property(_fget_{name})\n")])
        return updated


def undecorate(source: str) -> str:
    """``source`` with ``@torch.no_grad()`` and ``@property`` rewritten into undecorated equivalents."""
    return cst.parse_module(source).visit(_Undecorate()).code
