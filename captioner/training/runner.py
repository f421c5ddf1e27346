"""Run a training job from a RunConfig: Trainer, checkpoints, logs, resume, and the exported model file."""

import json
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import pytorch_lightning as pl
import torch
from pytorch_lightning.callbacks import ModelCheckpoint

from captioner.config import TASKS, RunConfig, TaskSpec, save_config
from captioner.errors import CaptionerError
from captioner.training.progress import LogLines

LOGGERS = {
    "csv": lambda out: pl.loggers.CSVLogger(out, name="logs"),
    "tensorboard": lambda out: pl.loggers.TensorBoardLogger(out, name="logs"),
    "none": lambda out: False,
}


@dataclass
class TrainResult:
    model_path: Path
    best_checkpoint: str | None
    metrics: dict[str, float]
    global_step: int


def train(config: RunConfig, resume: bool = False, force: bool = False) -> TrainResult:
    """Train the config's task; returns where the exported model file is and the final metrics."""
    out = Path(config.trainer.out_dir)
    last = out / "checkpoints" / "last.ckpt"
    _check_out_dir(out, last, resume, force)
    pl.seed_everything(config.seed, workers=True)
    spec: TaskSpec = TASKS.get(config.task)
    module, datamodule = spec.build(config)
    out.mkdir(parents=True, exist_ok=True)
    save_config(config, out / "config.yaml")
    checkpoint = ModelCheckpoint(dirpath=out / "checkpoints", filename="best-{step}", monitor=spec.monitor, mode=spec.mode)
    latest = ModelCheckpoint(  # only last.ckpt: at every epoch end, and every N steps when asked
        dirpath=out / "checkpoints", save_top_k=0, save_last=True, every_n_train_steps=config.trainer.checkpoint_every_n_steps
    )
    trainer = _build_trainer(config, out, [checkpoint, latest])
    start = time.perf_counter()
    trainer.fit(module, datamodule=datamodule, ckpt_path=str(last) if resume else None)
    seconds = time.perf_counter() - start
    if checkpoint.best_model_path:
        state = torch.load(checkpoint.best_model_path, map_location="cpu", weights_only=True)["state_dict"]
        module.load_state_dict(state)
    metrics = {k: float(v) for k, v in trainer.callback_metrics.items()}
    if checkpoint.best_model_score is not None:
        metrics[f"best_{spec.monitor}"] = float(checkpoint.best_model_score)
    meta = {"task": config.task, "global_step": trainer.global_step, "metrics": metrics, "train_seconds": round(seconds, 1)}
    model_path = module.export(out / "model.pt", meta=meta, force=True)
    (out / "metrics.json").write_text(json.dumps(meta, indent=2))
    return TrainResult(model_path, checkpoint.best_model_path or None, metrics, trainer.global_step)


def _check_out_dir(out: Path, last: Path, resume: bool, force: bool) -> None:
    if resume and not last.is_file():
        raise CaptionerError(f"cannot resume: {last} does not exist")
    if not resume and not force and (out / "checkpoints").exists():
        raise CaptionerError(f"{out} already holds a training run; pass --resume to continue it or --force to start over")


def _build_trainer(config: RunConfig, out: Path, callbacks: list) -> pl.Trainer:
    t = config.trainer
    bar = t.progress_bar and sys.stdout.isatty()  # Lightning's bar on a terminal; plain periodic lines in logs
    callbacks = callbacks + [LogLines()] if t.progress_bar and not bar else callbacks
    if t.logger not in LOGGERS:
        raise CaptionerError(f"unknown logger {t.logger!r}; known: {', '.join(LOGGERS)}")
    optional = {k: v for k, v in (("limit_train_batches", t.limit_train_batches), ("limit_val_batches", t.limit_val_batches)) if v is not None}
    return pl.Trainer(
        default_root_dir=out,
        max_epochs=t.max_epochs,
        max_steps=t.max_steps,
        accelerator=t.accelerator,
        devices=t.devices,
        strategy=t.strategy,
        num_nodes=t.num_nodes,
        precision=t.precision,
        log_every_n_steps=t.log_every_n_steps,
        check_val_every_n_epoch=t.check_val_every_n_epoch,
        fast_dev_run=t.fast_dev_run,
        gradient_clip_val=config.optim.grad_clip or None,
        logger=LOGGERS[t.logger](out),
        callbacks=callbacks,
        enable_progress_bar=bar,
        enable_model_summary=False,
        deterministic=t.deterministic,
        num_sanity_val_steps=0,
        **optional,
    )
