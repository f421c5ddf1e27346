"""Lightning DDP on CPU: two gloo processes train a few steps and end with identical weights."""

import subprocess
import sys

import pytest
import torch

from helpers import CONFIGS


@pytest.mark.slow
def test_two_process_ddp_ranks_end_with_identical_weights(shapes, tmp_path):
    script = tmp_path / "ddp_train.py"
    script.write_text(f"""
import sys, torch
sys.path.insert(0, {str(CONFIGS.parent / 'tests')!r})
from helpers import tiny_caption_config
from captioner.config import TASKS
import captioner.training.tasks
from captioner.training.runner import _build_trainer
from pathlib import Path

config = tiny_caption_config(Path({str(shapes)!r}), Path({str(tmp_path / 'run')!r}),
    "trainer.strategy=ddp", "trainer.accelerator=cpu", "trainer.devices=2", "trainer.max_steps=4", "trainer.max_epochs=1")
torch.manual_seed(0)
module, datamodule = TASKS.get("caption").build(config)
trainer = _build_trainer(config, Path(config.trainer.out_dir), [])
trainer.fit(module, datamodule=datamodule)
torch.save({{"step": trainer.global_step, "world": trainer.world_size, **module.decoder.state_dict()}}, Path({str(tmp_path)!r}) / f"rank{{trainer.global_rank}}.pt")
""")
    result = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    rank0, rank1 = (torch.load(tmp_path / f"rank{r}.pt", weights_only=True) for r in (0, 1))
    assert rank0.pop("step") == rank1.pop("step") == 4
    assert rank0.pop("world") == rank1.pop("world") == 2
    assert rank0.keys() == rank1.keys()
    for name in rank0:
        torch.testing.assert_close(rank0[name], rank1[name], msg=name)
