"""Reading the project config from YAML, with errors that point at the file and line."""

from __future__ import annotations

from importlib import resources
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from traitforge.errors import ConfigError
from traitforge.schemas import ProjectConfig

DEFAULT_CONFIG_RESOURCE = "default_config.yaml"


class _ReadableDumper(yaml.SafeDumper):
    """Writes multi-line strings (the rubrics) as literal blocks people can read and edit."""


def _str_representer(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
    style = "|" if "\n" in value else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


_ReadableDumper.add_representer(str, _str_representer)


def dump_config(config: ProjectConfig) -> str:
    return yaml.dump(
        config.model_dump(mode="json"),
        Dumper=_ReadableDumper,
        sort_keys=False,
        allow_unicode=True,
        width=100,
    )


def default_config_text() -> str:
    return (
        resources.files("traitforge.schemas")
        .joinpath(DEFAULT_CONFIG_RESOURCE)
        .read_text(encoding="utf-8")
    )


def default_config() -> ProjectConfig:
    return parse_config(default_config_text(), "<default config>")


def load_config(path: str | Path) -> ProjectConfig:
    """Load a config file; top-level keys it leaves out keep their default values."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError as e:
        raise ConfigError(
            f"config file {path} does not exist; pass an existing YAML file with --config, or "
            "leave --config out to use the defaults"
        ) from e
    except UnicodeDecodeError as e:
        raise ConfigError(f"config file {path} is not UTF-8 text ({e}); save it as UTF-8") from e
    return parse_config(text, str(path))


def parse_config(text: str, name: str) -> ProjectConfig:
    try:
        data = yaml.safe_load(text)
        root = yaml.compose(text)
    except yaml.YAMLError as e:
        raise ConfigError(f"{name}: not valid YAML: {e}") from e
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(
            f"{name}: expected a mapping of config keys at the top level, got "
            f"{type(data).__name__}; start the file with keys such as 'traits:' or 'export:'"
        )
    defaults = yaml.safe_load(default_config_text())
    merged = {**defaults, **data}
    try:
        return ProjectConfig.model_validate(merged)
    except ValidationError as e:
        first = e.errors()[0]
        loc = tuple(first["loc"])
        line = _line_of(root, loc)
        where = f"{name}, line {line}" if line is not None else name
        field = ".".join(str(p) for p in loc) or "(top level)"
        raise ConfigError(
            f"{where}, field '{field}': {first['msg']} (got {_short(first.get('input'))}). "
            f"{len(e.errors())} problem(s) in total; fix this one and re-run."
        ) from e


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def _line_of(node: yaml.Node | None, loc: tuple[Any, ...]) -> int | None:
    """The 1-based line of the YAML node at a pydantic error location, as deep as it exists."""
    line = None
    for part in loc:
        if isinstance(node, yaml.MappingNode):
            match = next((v for k, v in node.value if k.value == str(part)), None)
            if match is None:
                break
            node = match
        elif isinstance(node, yaml.SequenceNode) and isinstance(part, int):
            if part >= len(node.value):
                break
            node = node.value[part]
        else:
            break
        line = node.start_mark.line + 1
    return line
