"""Training progress in logs and pipes: Lightning's bar redraws one line with carriage returns, which a log file
keeps as one endless line. Where the output is not a terminal, this callback prints a plain line instead, every
`interval` seconds, for training batches and for validation (whose greedy decoding is the slow part)."""

import pytorch_lightning as pl

from captioner.progress import LOG_INTERVAL_S, progress


class LogLines(pl.Callback):
    def __init__(self, interval: float = LOG_INTERVAL_S) -> None:
        self.interval = interval
        self._bars: dict = {}  # stage → its progress counter

    def on_train_epoch_start(self, trainer: pl.Trainer, module: pl.LightningModule) -> None:
        self._open(trainer, "train", trainer.num_training_batches)

    def on_train_batch_end(self, trainer: pl.Trainer, *args) -> None:
        self._step("train")

    def on_train_epoch_end(self, trainer: pl.Trainer, module: pl.LightningModule) -> None:
        self._close("train")

    def on_validation_epoch_start(self, trainer: pl.Trainer, module: pl.LightningModule) -> None:
        self._open(trainer, "validate", sum(trainer.num_val_batches))

    def on_validation_batch_end(self, trainer: pl.Trainer, *args) -> None:
        self._step("validate")

    def on_validation_epoch_end(self, trainer: pl.Trainer, module: pl.LightningModule) -> None:
        self._close("validate")

    def _open(self, trainer: pl.Trainer, stage: str, total: float) -> None:
        if trainer.is_global_zero and not trainer.sanity_checking:
            self._close(stage)
            batches = int(total) if total != float("inf") else None
            self._bars[stage] = progress(batches, f"epoch {trainer.current_epoch} {stage}", unit="batch", interval=self.interval)

    def _step(self, stage: str) -> None:
        if stage in self._bars:
            self._bars[stage].update(1)

    def _close(self, stage: str) -> None:
        bar = self._bars.pop(stage, None)
        if bar is not None:
            bar.close()
