"""The config template: every setting of the default config, each under its description.

Generated from the config models, so a field added to any section shows up here with the
documentation written in its `Field(description=...)`; the values are the resolved defaults
(the traits and ingest sources of default_config.yaml, the models' defaults elsewhere).
"""

from __future__ import annotations

import inspect
import textwrap
import types
from typing import Any, Literal, Union, get_args, get_origin

import annotated_types
import yaml
from pydantic import BaseModel
from pydantic.fields import FieldInfo

from traitforge.workspace.config_file import _ReadableDumper, default_config

_WIDTH = 100
_INDENT = "  "
_KEEP = "\0"  # a space that line wrapping must not break at
HEADER = """\
# traitforge project config: every setting, at its default value, under its description.
# Copy it, change what you need, and pass it with --config. A top-level key you leave out
# keeps its default value.
"""

_BOUNDS = (
    (annotated_types.Ge, "ge", ">="),
    (annotated_types.Gt, "gt", ">"),
    (annotated_types.Le, "le", "<="),
    (annotated_types.Lt, "lt", "<"),
    (annotated_types.MinLen, "min_length", "at least {} item(s)"),
    (annotated_types.MaxLen, "max_length", "at most {} item(s)"),
)


def config_template(config: BaseModel | None = None) -> str:
    """`config` (default: the default project config) as commented YAML that loads back to it."""
    config = config if config is not None else default_config()
    sections = []
    for name, field in type(config).model_fields.items():
        lines = _comment(field_doc(field), "")
        lines += _field_lines(name, getattr(config, name), field.annotation, "")
        sections.append("\n".join(lines) + "\n")
    return HEADER + "\n" + "\n".join(sections)


def _model_lines(
    value: BaseModel, model: type[BaseModel], indent: str, documented: bool = True
) -> list[str]:
    lines: list[str] = []
    for name, field in model.model_fields.items():
        if documented:
            lines += _comment(field_doc(field), indent)
        lines += _field_lines(name, getattr(value, name), field.annotation, indent, documented)
    return lines


def _field_lines(
    name: str, value: Any, annotation: Any, indent: str, documented: bool = True
) -> list[str]:
    model = _model_class(annotation)
    if model is not None and isinstance(value, model):
        return [f"{indent}{name}:", *_model_lines(value, model, indent + _INDENT, documented)]
    item_model = _list_item_model(annotation)
    if item_model is not None and value and all(isinstance(v, item_model) for v in value):
        lines = [f"{indent}{name}:"]
        for i, item in enumerate(value):
            # The first item documents the fields; repeating it for every item is noise.
            body = _model_lines(item, item_model, indent + _INDENT * 2, documented and i == 0)
            lines += _as_list_item(body, indent + _INDENT)
        return lines
    return _leaf_lines(name, value, indent)


def _as_list_item(body: list[str], indent: str) -> list[str]:
    """A mapping's lines as one item of a block sequence: `- ` in front of its first line."""
    first, rest = body[0], body[1:]
    return [f"{indent}- {first.lstrip()}", *rest]


def _leaf_lines(name: str, value: Any, indent: str) -> list[str]:
    text = yaml.dump(
        {name: _plain(value)},
        Dumper=_ReadableDumper,
        sort_keys=False,
        allow_unicode=True,
        width=_WIDTH,
    )
    return [indent + line if line else line for line in text.rstrip("\n").split("\n")]


def _plain(data: Any) -> Any:
    """A value as the plain data YAML can hold: models (e.g. in ingest.sources) as mappings."""
    if isinstance(data, BaseModel):
        return data.model_dump(mode="python")
    if isinstance(data, list):
        return [_plain(v) for v in data]
    if isinstance(data, dict):
        return {k: _plain(v) for k, v in data.items()}
    return data


def _comment(text: str, indent: str) -> list[str]:
    if not text:
        return []
    width = max(40, _WIDTH - len(indent) - 2)
    lines = textwrap.wrap(text, width, break_on_hyphens=False)
    return [f"{indent}# {line.replace(_KEEP, ' ')}" for line in lines]


def field_doc(field: FieldInfo) -> str:
    """What the template says above a field: its description (or, for a section without one,
    its model's docstring), the values a Literal allows, and its bounds."""
    parts = []
    description = field.description
    model = _model_class(field.annotation)
    if description is None and model is not None and model.__doc__:
        description = inspect.cleandoc(model.__doc__)  # a class's own docstring, not inherited
    if description:
        parts.append(" ".join(description.split()))
    choices = _literal_choices(field.annotation)
    if choices and not all(repr(c) in (description or "") for c in choices):
        parts.append("One of: " + ", ".join(repr(c) for c in choices) + ".")
    bounds = _bounds(field)
    if bounds:
        parts.append("Allowed: " + ", ".join(bounds) + ".")
    return " ".join(parts)


def _bounds(field: FieldInfo) -> list[str]:
    found = []
    for constraint in field.metadata:
        for kind, attribute, form in _BOUNDS:
            if isinstance(constraint, kind):
                bound = getattr(constraint, attribute)
                text = form.format(bound) if "{}" in form else f"{form} {bound}"
                found.append(text.replace(" ", _KEEP))  # one bound is never split over lines
    return found


def _literal_choices(annotation: Any) -> list[Any]:
    """The values of a Literal (or Literal | None) field; none for a field that takes others."""
    if get_origin(annotation) is Literal:
        return list(get_args(annotation))
    if get_origin(annotation) in (Union, types.UnionType):
        args = [arg for arg in get_args(annotation) if arg is not type(None)]
        if all(get_origin(arg) is Literal for arg in args):
            return [c for arg in args for c in get_args(arg)]
    return []


def _model_class(annotation: Any) -> type[BaseModel] | None:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    return None


def _list_item_model(annotation: Any) -> type[BaseModel] | None:
    if get_origin(annotation) is list:
        (item,) = get_args(annotation)
        return _model_class(item)
    return None
