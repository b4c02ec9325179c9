"""Command-line arguments from a dataclass (CleanRL style), shared by the examples.

Every field of the dataclass becomes a ``--flag`` with its default and the docstring written
under it (``--help`` lists them); booleans take ``--flag``, ``--flag false`` or ``--no-flag``,
lists take several values.
"""

from __future__ import annotations

import argparse
import ast
import dataclasses
import inspect
import typing
from typing import Any, Sequence, TypeVar

T = TypeVar("T")

__all__ = ["parse_args"]


def _field_docs(cls: type) -> dict[str, str]:
    """The string literal written right under each field (``x: int = 1`` then ``\"\"\"doc\"\"\"``)."""
    try:
        tree = ast.parse(inspect.getsource(cls))
    except (OSError, TypeError, SyntaxError):
        return {}
    docs: dict[str, str] = {}
    body = tree.body[0].body if tree.body and isinstance(tree.body[0], ast.ClassDef) else []
    for node, nxt in zip(body, body[1:]):
        if (isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name) and isinstance(nxt, ast.Expr)
                and isinstance(nxt.value, ast.Constant) and isinstance(nxt.value.value, str)):
            docs[node.target.id] = nxt.value.value.strip()
    return docs


def _to_bool(text: str) -> bool:
    value = text.strip().lower()
    if value in ("1", "true", "yes", "on"):
        return True
    if value in ("0", "false", "no", "off"):
        return False
    raise argparse.ArgumentTypeError(f"expected a boolean (true/false), got {text!r}")


def parse_args(cls: type[T], argv: Sequence[str] | None = None, description: str | None = None,
               helps: dict[str, str] | None = None) -> T:
    """Parse ``argv`` (default: ``sys.argv[1:]``) into an instance of the dataclass ``cls``.

    ``helps`` overrides the help text of fields by name (default: the docstring under each field).
    """
    if not dataclasses.is_dataclass(cls):
        raise TypeError(f"parse_args needs a dataclass, got {cls!r}")
    parser = argparse.ArgumentParser(description=description or (cls.__doc__ or "").strip(),
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    hints = typing.get_type_hints(cls)
    docs = {**_field_docs(cls), **(helps or {})}
    for f in dataclasses.fields(cls):
        default: Any = f.default if f.default is not dataclasses.MISSING else f.default_factory()  # type: ignore[misc]
        flag = "--" + f.name.replace("_", "-")
        helptext = f"{docs.get(f.name, '')} (default: {default!r})".strip()
        hint = hints.get(f.name, type(default))
        if hint is bool:
            parser.add_argument(flag, type=_to_bool, nargs="?", const=True, default=default, metavar="BOOL",
                                help=helptext)
            parser.add_argument("--no-" + flag[2:], dest=f.name, action="store_false", help=argparse.SUPPRESS)
        elif typing.get_origin(hint) in (list, tuple):
            (item,) = typing.get_args(hint)[:1] or (str,)
            parser.add_argument(flag, type=item, nargs="+", default=default, help=helptext)
        else:
            parser.add_argument(flag, type=hint if hint in (int, float, str) else str, default=default, help=helptext)
    return cls(**vars(parser.parse_args(argv)))
