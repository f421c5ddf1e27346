"""One config system: YAML sections mapped onto typed dataclasses, with `section.key=value` overrides.

A run config has the sections `task`, `seed`, `encoder`, `data`, `model`, `optim`, `trainer`; the task
(registered in `captioner.training.tasks`) says which dataclasses its `data` and `model` sections fill.
"""

import copy
import dataclasses
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from captioner.errors import CaptionerError
from captioner.registry import Registry


@dataclass
class EncoderConfig:
    name: str = "efficientnet_lite0"
    pretrained: bool = True
    weights_path: str | None = None
    image_size: int | None = None  # None: the encoder's own input size
    pool_size: int | None = None
    trainable_stages: int = 0  # 0 = frozen; N = fine-tune the top N stages
    fine_tuned: bool = False  # set in model files whose encoder stages were trained: they keep those weights

    @property
    def tuned(self) -> bool:
        """Do stages train now, or did they? No feature cache (made from the package's weights) holds its grids."""
        return self.trainable_stages > 0 or self.fine_tuned

    @property
    def own_weights(self) -> bool:
        """Are the weights not the package's (tuned, or never pretrained)? Model files store them then."""
        return self.tuned or not self.pretrained


@dataclass
class OptimConfig:
    lr: float = 4e-4
    encoder_lr: float = 1e-4  # for fine-tuned encoder stages
    weight_decay: float = 1e-4
    schedule: str = "cosine"  # cosine | constant
    warmup_steps: int = 0
    grad_clip: float = 5.0

    def __post_init__(self) -> None:
        if self.schedule not in ("cosine", "constant"):
            raise ValueError(f"optim schedule must be cosine or constant, got {self.schedule!r}")
        if self.lr <= 0 or self.encoder_lr <= 0:
            raise ValueError("learning rates must be positive")


@dataclass
class TrainerConfig:
    out_dir: str = "runs/default"
    max_epochs: int = 10
    max_steps: int = -1
    accelerator: str = "auto"
    devices: Any = 1
    strategy: str = "auto"
    num_nodes: int = 1
    precision: str | int = "32-true"
    log_every_n_steps: int = 10
    check_val_every_n_epoch: int = 1
    limit_train_batches: float | None = None
    limit_val_batches: float | None = None
    fast_dev_run: bool = False
    checkpoint_every_n_steps: int | None = None  # also save last.ckpt mid-epoch, for --resume after a crash
    logger: str = "csv"  # csv | tensorboard | none
    progress_bar: bool = True
    deterministic: bool = False


@dataclass
class TaskSpec:
    """What a task contributes: its data/model dataclasses, a builder, and the metric that picks checkpoints."""

    data_config: type
    model_config: type
    build: typing.Callable  # (RunConfig) → (LightningModule, LightningDataModule)
    monitor: str
    mode: str = "max"
    training_config: type | None = None  # the task's own `training` section (objective, schedules), if it has one


TASKS: Registry = Registry("task")


@dataclass
class RunConfig:
    task: str
    data: Any
    model: Any
    seed: int = 0
    encoder: EncoderConfig = field(default_factory=EncoderConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    trainer: TrainerConfig = field(default_factory=TrainerConfig)
    training: Any = None  # the task's training_config section, when it has one
    given: frozenset[str] = frozenset()  # the sections the YAML/overrides spelled out (the rest are defaults)

    def to_dict(self) -> dict:
        data = {f.name: getattr(self, f.name) for f in dataclasses.fields(self) if f.name != "given"}
        return {k: dataclasses.asdict(v) if dataclasses.is_dataclass(v) else v for k, v in data.items() if v is not None}


SECTIONS = {"encoder": EncoderConfig, "optim": OptimConfig, "trainer": TrainerConfig}


def load_config(path: str | Path | None, overrides: typing.Sequence[str] = (), raw: dict | None = None) -> RunConfig:
    """Read a YAML file (or a dict), apply `a.b=value` overrides, and type-check every section."""
    data = _read_yaml(Path(path)) if path is not None else copy.deepcopy(raw or {})
    for item in overrides:
        _apply_override(data, item)
    if "task" not in data:
        raise CaptionerError("the config must say which task to train: task: caption | vqa")
    import captioner.training.tasks  # noqa: F401  (registers the tasks)

    spec: TaskSpec = TASKS.get(str(data["task"]))
    known = {"task", "seed", "data", "model", *SECTIONS} | ({"training"} if spec.training_config else set())
    unknown = set(data) - known
    if unknown:
        raise CaptionerError(f"unknown config section(s) for task {data['task']}: {', '.join(sorted(unknown))}")
    sections = {name: build_section(name, cls, data.get(name)) for name, cls in SECTIONS.items()}
    training = build_section("training", spec.training_config, data.get("training")) if spec.training_config else None
    return RunConfig(
        task=data["task"],
        seed=int(data.get("seed", 0)),
        data=build_section("data", spec.data_config, data.get("data")),
        model=build_section("model", spec.model_config, data.get("model")),
        training=training,
        given=frozenset(data),
        **sections,
    )


def save_config(config: RunConfig, path: str | Path) -> None:
    Path(path).write_text(yaml.safe_dump(config.to_dict(), sort_keys=False))


def build_section(name: str, cls: type, values: dict | None) -> Any:
    """Instantiate dataclass `cls` from `values`, naming any unknown key or bad value in one line."""
    values = dict(values or {})
    hints = typing.get_type_hints(cls)
    known = {f.name for f in dataclasses.fields(cls)}
    for key in values:
        if key not in known:
            raise CaptionerError(f"unknown option {name}.{key} (known: {', '.join(sorted(known))})")
        values[key] = _coerce(f"{name}.{key}", values[key], hints[key])
    try:
        return cls(**values)
    except (TypeError, ValueError) as e:
        raise CaptionerError(f"invalid {name} config: {e}") from None


def _coerce(name: str, value: Any, hint: Any) -> Any:
    """YAML gives int for 1 and str for 1e-4; accept what the annotation clearly means, refuse the rest."""
    allowed = typing.get_args(hint) if isinstance(hint, types.UnionType) or typing.get_origin(hint) is typing.Union else (hint,)
    if value is None and type(None) in allowed or Any in allowed:
        return value
    for kind in (bool, int, float, str):
        if kind in allowed:
            try:
                return _convert(value, kind)
            except (TypeError, ValueError):
                continue
    if any(isinstance(value, a) for a in allowed if isinstance(a, type)):
        return value
    raise CaptionerError(f"option {name} expects {getattr(hint, '__name__', hint)}, got {value!r}")


def _convert(value: Any, kind: type) -> Any:
    if kind is bool:
        if isinstance(value, bool):
            return value
        raise TypeError
    if kind is int:
        if isinstance(value, bool) or (isinstance(value, float) and not value.is_integer()):
            raise TypeError
        return int(value)
    if kind is float:
        if isinstance(value, bool):
            raise TypeError
        return float(value)
    if not isinstance(value, str):
        raise TypeError
    return value


def _read_yaml(path: Path) -> dict:
    try:
        data = yaml.safe_load(path.read_text())
    except FileNotFoundError:
        raise CaptionerError(f"config file not found: {path}") from None
    except yaml.YAMLError as e:
        raise CaptionerError(f"{path} is not valid YAML: {str(e).splitlines()[0]}") from None
    if not isinstance(data, dict):
        raise CaptionerError(f"{path} must hold a mapping of config sections")
    return data


def _apply_override(data: dict, item: str) -> None:
    """`model.hidden_dim=256` → data["model"]["hidden_dim"] = 256 (the value is parsed as YAML)."""
    key, sep, text = item.partition("=")
    if not sep or not key:
        raise CaptionerError(f"override {item!r} must look like section.option=value")
    *parents, leaf = key.split(".")
    node = data
    for part in parents:
        node = node.setdefault(part, {})
        if not isinstance(node, dict):
            raise CaptionerError(f"override {item!r}: {part} is not a section")
    node[leaf] = yaml.safe_load(text) if text else None
