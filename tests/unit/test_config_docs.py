"""The config's own documentation: `config-template` prints every setting under its
description and loads back to the default config; the README names every mapping key."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field
from typer.testing import CliRunner

from traitforge.cli import app
from traitforge.schemas import FieldMapping, ProjectConfig
from traitforge.workspace import default_config
from traitforge.workspace.config_template import config_template, field_doc

README = Path(__file__).parents[2] / "README.md"


def _models(model: type[BaseModel]) -> list[type[BaseModel]]:
    """The model and every model nested in its fields (directly or as list items)."""
    found = [model]
    for field in model.model_fields.values():
        args = getattr(field.annotation, "__args__", ())
        for candidate in (field.annotation, *args):
            if isinstance(candidate, type) and issubclass(candidate, BaseModel):
                found += [m for m in _models(candidate) if m not in found]
    return found


def _comments(text: str) -> str:
    """The comment lines' text, joined (a list item's first one follows its `- `)."""
    lines = [line.strip().removeprefix("- ") for line in text.splitlines()]
    return " ".join(" ".join(line[2:] for line in lines if line.startswith("# ")).split())


def _same_keys(data: object, model: type[BaseModel], where: str = "") -> None:
    """Every field of every section is written out, and nothing else (a field the template
    left out would still load back, to its default, so the round trip alone cannot tell)."""
    assert isinstance(data, dict), where
    assert list(data) == list(model.model_fields), where
    for name, field in model.model_fields.items():
        annotation = field.annotation
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            _same_keys(data[name], annotation, f"{where}.{name}")
        item = getattr(annotation, "__args__", (None,))[0]
        if isinstance(item, type) and issubclass(item, BaseModel) and isinstance(data[name], list):
            for i, value in enumerate(data[name]):
                _same_keys(value, item, f"{where}.{name}[{i}]")


def test_the_template_is_yaml_that_loads_back_to_the_default_config():
    text = config_template()
    data = yaml.safe_load(text)
    assert ProjectConfig.model_validate(data) == default_config()
    _same_keys(data, ProjectConfig)
    # Every section the README cites is there, not only traits, ingest and export.
    assert [k for k in data if isinstance(data[k], dict | list)] == [
        "traits",
        "ingest",
        "curation",
        "annotation",
        "export",
        "reward",
        "loop",
    ]


def test_every_field_description_is_a_comment_in_the_template():
    comments = _comments(config_template())
    for model in _models(ProjectConfig):
        for name, field in model.model_fields.items():
            if field.description:
                doc = " ".join(field.description.split())
                assert doc in comments, f"{model.__name__}.{name}"
    for line in config_template().splitlines():
        if line.strip().removeprefix("- ").startswith("# "):
            assert len(line) <= 100, line


class _Inner(BaseModel):
    """A section documented by its docstring."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    size: int = Field(3, ge=1, le=9, description="How many.")
    mode: Literal["fast", "slow"] = "fast"
    note: str = Field("two\nlines", description="Kept as a block.")


class _Outer(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    inner: _Inner = Field(default_factory=_Inner)
    items: list[_Inner] = Field(default_factory=lambda: [_Inner(size=2), _Inner(mode="slow")])
    ratio: float = Field(0.5, gt=0.0, lt=1.0)


def test_a_new_field_or_section_is_documented_without_touching_the_template():
    text = config_template(_Outer())
    assert _Outer.model_validate(yaml.safe_load(text)) == _Outer()
    comments = _comments(text)
    assert "A section documented by its docstring." in comments
    assert "How many. Allowed: >= 1, <= 9." in comments
    assert "One of: 'fast', 'slow'." in comments and "Allowed: > 0.0, < 1.0." in comments
    # The first list item documents its fields; the others do not repeat it.
    assert comments.count("How many.") == 2  # `inner` and the first of `items`


def test_choices_already_named_in_the_description_are_not_repeated():
    assert field_doc(FieldMapping.model_fields["prompt_format"]).count("'chat'") == 1


def test_config_template_command_prints_the_template():
    result = CliRunner().invoke(app, ["config-template"])
    assert result.exit_code == 0, result.output
    assert result.stdout == config_template()


def _readme_section(title: str) -> str:
    text = README.read_text(encoding="utf-8")
    match = re.search(rf"^### {re.escape(title)}\n(.*?)(?=^#)", text, re.M | re.S)
    assert match, f"README has no '### {title}' section"
    return match.group(1)


def test_the_readme_names_every_ingest_mapping_key_and_no_other():
    section = _readme_section("Ingest mapping keys")
    keys = re.findall(r"^\| `(\w+)` \|", section, re.M)
    assert sorted(keys) == sorted(FieldMapping.model_fields)
    example = re.search(r"```yaml\n(.*?)```", section, re.S)
    assert example, "the section's example config"
    FieldMapping.model_validate(yaml.safe_load(example.group(1))["ingest"]["mapping"])
