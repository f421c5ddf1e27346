import os

import pytest
import torch

from captioner.checkpoint import atomic_save, load_model_file, save_model_file
from captioner.errors import CaptionerError


class Exploit:
    def __reduce__(self):
        return (os.system, ("echo pwned > pwned.txt",))


def test_round_trip_of_a_model_file(tmp_path):
    path = save_model_file(tmp_path / "m.pt", "caption", {"decoder_state": {"w": torch.ones(2)}, "vocab": ["<pad>"]})
    payload = load_model_file(path, "caption")
    assert payload["vocab"] == ["<pad>"] and torch.equal(payload["decoder_state"]["w"], torch.ones(2))


def test_a_file_carrying_pickled_code_is_refused_and_not_run(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    path = tmp_path / "evil.pt"
    torch.save({"format": "captioner/caption", "format_version": 1, "x": Exploit()}, path)
    with pytest.raises(CaptionerError, match="refused: loading could run code"):
        load_model_file(path, "caption")
    assert not (tmp_path / "pwned.txt").exists()


def test_truncated_and_foreign_files_are_explained(tmp_path):
    path = save_model_file(tmp_path / "m.pt", "caption", {"w": torch.randn(1000)})
    truncated = tmp_path / "cut.pt"
    truncated.write_bytes(path.read_bytes()[:500])
    with pytest.raises(CaptionerError, match="not a usable captioner checkpoint"):
        load_model_file(truncated, "caption")
    with pytest.raises(CaptionerError, match="is a caption model, not a vqa model"):
        load_model_file(path, "vqa")
    torch.save({"state_dict": {}}, tmp_path / "lightning.ckpt")
    with pytest.raises(CaptionerError, match="not a captioner model file"):
        load_model_file(tmp_path / "lightning.ckpt", "caption")
    with pytest.raises(CaptionerError, match="checkpoint not found"):
        load_model_file(tmp_path / "missing.pt", "caption")


def test_existing_files_are_not_overwritten_without_force(tmp_path):
    path = tmp_path / "m.pt"
    path.write_text("user data")
    with pytest.raises(CaptionerError, match="already exists; pass --force"):
        atomic_save({"a": 1}, path)
    assert path.read_text() == "user data"
    atomic_save({"a": 1}, path, force=True)
    assert torch.load(path, weights_only=True) == {"a": 1}
    assert [p.name for p in tmp_path.iterdir()] == ["m.pt"]  # no temporary file left behind


def test_model_files_get_the_usual_permissions_not_owner_only(tmp_path):
    old = os.umask(0o022)
    try:
        path = save_model_file(tmp_path / "m.pt", "caption", {"w": torch.ones(1)})
    finally:
        os.umask(old)
    assert path.stat().st_mode & 0o777 == 0o644
