"""The accelerate configs traitforge ships, read by accelerate 1.15's own loader and launcher
(so a misspelt key or value fails here); the launcher checks; the save path of sharded runs.
Launching them on two CPU processes: tests/integration/test_reward_models.py."""

from __future__ import annotations

import os
from types import SimpleNamespace
from unittest import mock

import pytest
import yaml

from traitforge.errors import ConfigError
from traitforge.reward.launch import (
    LAUNCH_CONFIGS,
    check_launcher_precision,
    fsdp_ignored,
    full_state_dict,
    launch_config_path,
)
from traitforge.schemas import RewardConfig


def _launcher_env(name: str) -> tuple[object, dict[str, str]]:
    """What `accelerate launch --config_file <shipped> -m traitforge.cli train` resolves:
    its arguments, and the environment each GPU process would get."""
    from accelerate.commands.launch import _validate_launch_command, launch_command_parser
    from accelerate.utils.launch import prepare_multi_gpu_env

    argv = ["--config_file", str(launch_config_path(name)), "-m", "traitforge.cli", "train"]
    args, _, _ = _validate_launch_command(launch_command_parser().parse_args(argv))
    return args, prepare_multi_gpu_env(args)


@pytest.mark.parametrize("name", LAUNCH_CONFIGS)
def test_each_shipped_config_loads_with_accelerates_own_config_class(name):
    from accelerate.commands.config.config_args import ClusterConfig, load_config_from_file

    path = launch_config_path(name)
    assert path.is_file()
    config = load_config_from_file(str(path))  # unknown top-level keys raise here
    assert isinstance(config, ClusterConfig)
    assert config.distributed_type.value == {"ddp": "MULTI_GPU", "fsdp": "FSDP"}[name]
    # traitforge sets the precision from reward.precision; see check_launcher_precision
    assert config.mixed_precision == "no"
    assert (config.num_machines, config.use_cpu) == (1, False)
    args, env = _launcher_env(name)
    assert env["ACCELERATE_MIXED_PRECISION"] == "no"
    assert args.num_processes == 2
    assert (env.get("ACCELERATE_USE_FSDP") == "true") == (name == "fsdp")


def test_every_fsdp_key_is_an_accelerate_launch_option():
    """The launcher copies fsdp_config keys onto its arguments without checking them, so a
    misspelt key would be dropped without a word: check them against its options."""
    from accelerate.commands.launch import launch_command_parser

    options = vars(launch_command_parser().parse_args(["x.py"]))
    keys = yaml.safe_load(launch_config_path("fsdp").read_text())["fsdp_config"]
    assert [k for k in keys if k not in options] == []


def test_the_fsdp_config_full_shards_llama_decoder_layers_of_the_shipped_backbone():
    from accelerate.utils import FullyShardedDataParallelPlugin
    from torch.distributed.fsdp import CPUOffloadPolicy
    from torch.distributed.fsdp.wrap import transformer_auto_wrap_policy
    from transformers import AutoConfig, AutoModelForSequenceClassification, BertConfig

    from traitforge.curation.generation.local import PACKAGED_MODEL, resolve_local_model

    _, env = _launcher_env("fsdp")
    with mock.patch.dict(os.environ, env):
        plugin = FullyShardedDataParallelPlugin()  # reads what the launcher set, validated
    assert plugin.fsdp_version == 2 and plugin.reshard_after_forward is True
    assert plugin.auto_wrap_policy is transformer_auto_wrap_policy
    assert plugin.transformer_cls_names_to_wrap == ["LlamaDecoderLayer"]
    assert plugin.state_dict_type.name == "FULL_STATE_DICT"
    assert not isinstance(plugin.cpu_offload, CPUOffloadPolicy)

    # SmolLM2's own config (from its GGUF file), shrunk: the class to wrap is in the model
    source = resolve_local_model(PACKAGED_MODEL)
    smol = AutoConfig.from_pretrained(source.location, gguf_file=source.gguf_file)
    assert smol.model_type == "llama"
    smol.update({"num_hidden_layers": 2, "hidden_size": 64, "intermediate_size": 128})
    smol.update({"num_attention_heads": 2, "num_key_value_heads": 2, "head_dim": 32})
    smol.num_labels = 1
    plugin.set_auto_wrap_policy(AutoModelForSequenceClassification.from_config(smol))
    assert {c.__name__ for c in plugin.auto_wrap_policy.keywords["transformer_layer_cls"]} == {
        "LlamaDecoderLayer"
    }

    with mock.patch.dict(os.environ, env):
        other = FullyShardedDataParallelPlugin()
    bert = BertConfig(hidden_size=32, num_hidden_layers=1, num_attention_heads=2, num_labels=1)
    with pytest.raises(ValueError, match="LlamaDecoderLayer"):  # MiniLM: use ddp.yaml
        other.set_auto_wrap_policy(AutoModelForSequenceClassification.from_config(bert))


def test_an_unknown_config_name_lists_the_shipped_ones():
    with pytest.raises(ConfigError, match=r"no accelerate config named 'zero3'.*ddp, fsdp"):
        launch_config_path("zero3")


def test_a_launcher_precision_other_than_reward_precision_is_refused():
    check_launcher_precision("fp32", {})  # not launched by accelerate
    check_launcher_precision("fp32", {"ACCELERATE_MIXED_PRECISION": "no"})
    check_launcher_precision("bf16", {"ACCELERATE_MIXED_PRECISION": "bf16"})
    with pytest.raises(ConfigError, match=r"'bf16' but reward.precision resolved to 'fp32'"):
        check_launcher_precision("fp32", {"ACCELERATE_MIXED_PRECISION": "bf16"})
    with pytest.raises(ConfigError, match="mixed_precision no"):
        check_launcher_precision("bf16", {"ACCELERATE_MIXED_PRECISION": "fp16"})


def test_fsdp_asked_for_but_not_running_is_noticed():
    from accelerate.utils import DistributedType

    cpu = SimpleNamespace(distributed_type=DistributedType.MULTI_CPU)
    fsdp = SimpleNamespace(distributed_type=DistributedType.FSDP)
    assert fsdp_ignored(cpu, {"ACCELERATE_USE_FSDP": "true"})
    assert not fsdp_ignored(fsdp, {"ACCELERATE_USE_FSDP": "true"})
    assert not fsdp_ignored(cpu, {})


def test_unsharded_runs_gather_nothing():
    from accelerate.utils import DistributedType

    for kind in (DistributedType.NO, DistributedType.MULTI_CPU, DistributedType.MULTI_GPU):
        assert full_state_dict(SimpleNamespace(distributed_type=kind), None) is None


@pytest.mark.parametrize("lora", [False, True], ids=["full", "lora"])
def test_gathered_weights_rebuild_the_trained_model(lora):
    """What a sharded run saves: a fresh backbone loaded with the gathered weights gives the
    trained model's rewards, LoRA adapters and trained head included."""
    import torch
    from transformers import set_seed

    from traitforge.reward.backbone import load_for_training
    from traitforge.reward.training import _peft_config, rebuilt

    set_seed(0)
    config = RewardConfig(lora={"enabled": lora, "target_modules": ["query", "value"]})
    model, tokenizer, path = load_for_training(config.backbone)
    if lora:
        from peft import get_peft_model

        model = get_peft_model(model, _peft_config(config, model))
    with torch.no_grad():  # stands in for training: every weight moves off its init
        for p in model.parameters():
            p.add_(torch.randn_like(p) * 0.05)
    batch = tokenizer(["Is the sky green?", "No, it is blue."], return_tensors="pt", padding=True)
    model.eval()
    copy = rebuilt({k: v.clone() for k, v in model.state_dict().items()}, config, path).eval()
    with torch.no_grad():
        assert torch.allclose(copy(**batch).logits, model(**batch).logits, atol=1e-6)
    broken = {
        k: v for k, v in model.state_dict().items() if "score" not in k and "classifier" not in k
    }
    with pytest.raises(RuntimeError, match="Missing key"):
        rebuilt(broken, config, path)
