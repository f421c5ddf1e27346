"""Progress on a pipe or log file is whole lines with a rate and time left; --quiet shows nothing."""

import io
import re

from captioner.progress import progress, say


def test_without_a_terminal_progress_is_plain_lines_with_rate_and_eta():
    log = io.StringIO()  # not a terminal, like a pipe or a log file
    bar = progress(40, "caption", stream=log, interval=0)
    for step in range(40):
        bar.update(1)
        if step == 10:
            say("captioner caption: skipped x.txt: not an image file PIL can read", log)
    bar.close()
    lines = log.getvalue().splitlines()
    assert "\r" not in log.getvalue() and len(lines) > 3
    assert "captioner caption: skipped x.txt: not an image file PIL can read" in lines  # a whole line of its own
    assert re.fullmatch(r"caption: 100%\|#+\| 40/40 \[\d\d:\d\d<00:00, +[\d.]+img/s\]", lines[-1])


def test_quiet_prints_nothing_and_short_work_prints_nothing_by_default():
    for quiet, interval in ((True, 0), (False, 30)):
        log = io.StringIO()
        bar = progress(5, "caption", quiet=quiet, stream=log, interval=interval)
        bar.update(5)
        bar.close()
        assert log.getvalue() == ""


def test_training_in_a_log_prints_plain_lines_for_training_and_validation(shapes, tmp_path, capsys):
    import pytorch_lightning as pl

    from captioner.config import TASKS
    from captioner.training.progress import LogLines
    from helpers import tiny_caption_config

    config = tiny_caption_config(shapes, tmp_path, "trainer.limit_train_batches=2", "trainer.limit_val_batches=1")
    module, data = TASKS.get("caption").build(config)
    trainer = pl.Trainer(max_epochs=1, limit_train_batches=2, limit_val_batches=1, callbacks=[LogLines(interval=0)],
                         enable_progress_bar=False, logger=False, enable_checkpointing=False, accelerator="cpu",
                         num_sanity_val_steps=0, enable_model_summary=False)
    trainer.fit(module, datamodule=data)
    err = capsys.readouterr().err
    assert "\r" not in err
    assert re.search(r"^epoch 0 train: 100%.* 2/2 \[", err, flags=re.M)
    assert re.search(r"^epoch 0 validate: 100%.* 1/1 \[.*(batch/s|s/batch)\]$", err, flags=re.M)
