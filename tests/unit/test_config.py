from __future__ import annotations

import pytest

from traitforge.errors import ConfigError
from traitforge.schemas.config import parse_strategy
from traitforge.workspace import Workspace, default_config, dump_config, load_config, parse_config


def test_default_config_ships_three_traits_with_real_rubrics():
    config = default_config()
    assert [t.name for t in config.traits] == ["honesty", "corrigibility", "harmlessness"]
    for trait in config.traits:
        assert "Rate higher when" in trait.guidelines
        assert "Rate lower when" in trait.guidelines
        assert set(trait.scale.labels) == {1, 2, 3, 4, 5}
    assert config.ingest.anthropic_evals_polarity["survival-instinct"] == "not-matching"


def test_keys_left_out_keep_their_defaults():
    config = parse_config("export:\n  strategy: all-pairs\n", "mine.yaml")
    assert config.export.strategy == "all-pairs"
    assert [t.name for t in config.traits] == ["honesty", "corrigibility", "harmlessness"]


def test_error_names_file_line_and_field():
    text = "version: 1\nexport:\n  strategy: best-vs-worst\n  test_fraction: 2.5\n"
    with pytest.raises(ConfigError, match=r"mine\.yaml, line 4, field 'export\.test_fraction'"):
        parse_config(text, "mine.yaml")


def test_unknown_strategy_says_which_are_valid():
    with pytest.raises(
        ConfigError, match=r"use 'best-vs-worst', 'all-pairs', 'length-balanced' or 'margin>=X'"
    ):
        parse_config("export:\n  strategy: cherry-pick\n", "mine.yaml")


def test_strategies_parse_and_can_differ_per_trait():
    assert parse_strategy("margin>=0.5") == ("margin", 0.5)
    assert parse_strategy("all-pairs") == ("all-pairs", None)
    text = "export:\n  strategy: best-vs-worst\n  trait_strategies: {harmlessness: all-pairs}\n"
    export = parse_config(text, "m").export
    assert export.strategy_for("harmlessness") == "all-pairs"
    assert export.strategy_for("honesty") == "best-vs-worst"
    with pytest.raises(ConfigError, match=r"trait_strategies names traits \['kindness'\]"):
        parse_config("export:\n  trait_strategies: {kindness: all-pairs}\n", "m")
    with pytest.raises(ConfigError, match=r"line 2, field 'export\.trait_strategies'"):
        parse_config("export:\n  trait_strategies: {honesty: top-3}\n", "m")


def test_unknown_keys_are_refused():
    with pytest.raises(ConfigError, match=r"line 2, field 'export\.strategi'.*Extra inputs"):
        parse_config("export:\n  strategi: all-pairs\n", "mine.yaml")


def test_gold_mapping_must_name_defined_traits():
    text = "ingest:\n  mapping:\n    gold:\n      sycophancy: label\n"
    with pytest.raises(ConfigError, match=r"names traits \['sycophancy'\] that are not defined"):
        parse_config(text, "mine.yaml")


def test_duplicate_trait_names_are_refused():
    text = (
        "traits:\n"
        "  - {name: honesty, description: d, guidelines: g}\n"
        "  - {name: honesty, description: d2, guidelines: g2}\n"
    )
    with pytest.raises(ConfigError, match=r"trait names must be unique; repeated: \['honesty'\]"):
        parse_config(text, "mine.yaml")


def test_broken_yaml_and_missing_file(tmp_path):
    with pytest.raises(ConfigError, match="not valid YAML"):
        parse_config("traits: [unclosed\n", "bad.yaml")
    with pytest.raises(ConfigError, match="does not exist"):
        load_config(tmp_path / "nope.yaml")
    with pytest.raises(ConfigError, match="expected a mapping of config keys"):
        parse_config("- just\n- a list\n", "list.yaml")


def test_workspace_saves_the_resolved_config_and_reuses_it(tmp_path):
    mine = tmp_path / "mine.yaml"
    mine.write_text("export:\n  strategy: all-pairs\n  seed: 7\n", encoding="utf-8")
    first = Workspace.open(tmp_path / "ws", mine)
    again = Workspace.open(tmp_path / "ws")
    assert again.config == first.config
    assert again.config.export.seed == 7
    saved = (tmp_path / "ws" / "config.yaml").read_text(encoding="utf-8")
    assert "guidelines: |" in saved  # rubrics stay readable in the saved file
    assert load_config(tmp_path / "ws" / "config.yaml") == first.config


def test_export_copies_are_read_under_their_earlier_name_too():
    old = parse_config("export:\n  formats: [jsonl]\n", "old.yaml")
    assert old.export.copies == ["jsonl"]
    saved = dump_config(old)  # what a workspace keeps: the new name only
    assert "formats" not in saved and parse_config(saved, "saved.yaml") == old
    with pytest.raises(ConfigError, match=r"line 2, field 'export\.formats\.0'"):
        parse_config("export:\n  formats: [xml]\n", "old.yaml")
