import os
from pathlib import Path

import pytest
import torch

torch.set_num_threads(min(2, os.cpu_count() or 1))

COCO_MINI = Path(__file__).resolve().parents[2] / "shared" / "data" / "coco-mini"


@pytest.fixture(scope="session")
def coco_mini() -> Path:
    """The real COCO subset beside the checkout; tests that need it skip where it is absent."""
    if not (COCO_MINI / "captions_val.json").is_file():
        pytest.skip("../shared/data/coco-mini is not present")
    return COCO_MINI


@pytest.fixture(scope="session")
def shapes(tmp_path_factory) -> Path:
    """A small synthetic shapes dataset, generated once per test session."""
    from captioner.data.shapes import make_shapes

    out = tmp_path_factory.mktemp("shapes")
    make_shapes(out, n_images=40, seed=0, size=64)
    return out
