"""Training on several processes: the accelerate configs traitforge ships, the checks a run
makes against what the launcher set, and gathering a sharded model's weights to save them.

The configs are package data (`launch_configs/`), so `accelerate launch --config_file` can
point at them in any installed traitforge; `traitforge accelerate-config NAME` prints the path.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from traitforge.errors import ConfigError

LAUNCH_CONFIGS = ("ddp", "fsdp")
_FOLDER = Path(__file__).parent / "launch_configs"


def launch_config_path(name: str) -> Path:
    """The shipped accelerate config called `name` ('ddp' or 'fsdp')."""
    if name not in LAUNCH_CONFIGS:
        raise ConfigError(
            f"no accelerate config named {name!r}; traitforge ships {', '.join(LAUNCH_CONFIGS)}"
        )
    return _FOLDER / f"{name}.yaml"


def check_launcher_precision(resolved: str, environ: dict[str, str] | None = None) -> None:
    """Refuse a launcher precision that differs from reward.precision's.

    `accelerate launch` puts its config's mixed_precision in ACCELERATE_MIXED_PRECISION, and
    the Trainer takes it whenever reward.precision resolved to fp32: training would then run
    in bf16 (many times slower on a CPU without native bf16) while the card says fp32."""
    launcher = (os.environ if environ is None else environ).get("ACCELERATE_MIXED_PRECISION")
    if launcher in (None, "no") or launcher == resolved:
        return
    raise ConfigError(
        f"the accelerate launcher asks for mixed_precision {launcher!r} but reward.precision "
        f"resolved to {resolved!r} here; set mixed_precision: 'no' in the accelerate config "
        "(traitforge's shipped configs do) or pass `--mixed_precision no` to accelerate "
        f"launch, or set reward.precision: {launcher}"
    )


def fsdp_ignored(accelerator: Any, environ: dict[str, str] | None = None) -> bool:
    """True when the launcher asked for FSDP but accelerate runs plain data parallel: it
    shards only on accelerators, so CPU processes train with DDP over gloo instead."""
    from accelerate.utils import DistributedType

    asked = (os.environ if environ is None else environ).get("ACCELERATE_USE_FSDP", "")
    return asked.lower() == "true" and accelerator.distributed_type != DistributedType.FSDP


def full_state_dict(accelerator: Any, wrapped: Any) -> dict[str, Any] | None:
    """The whole model's weights, on CPU, when FSDP or DeepSpeed may shard them over the
    ranks (None otherwise: every rank holds them all). Gathering is collective: every rank
    must call this; the main process gets the weights, the others an empty dict."""
    from accelerate.utils import DistributedType

    if accelerator.distributed_type not in (DistributedType.FSDP, DistributedType.DEEPSPEED):
        return None
    state = accelerator.get_state_dict(wrapped)
    if not accelerator.is_main_process:
        return {}
    return {name: tensor.detach().cpu() for name, tensor in state.items()}
