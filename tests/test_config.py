import pytest

from captioner.config import EncoderConfig, OptimConfig, build_section, load_config
from captioner.errors import CaptionerError

BASE = {"task": "caption", "data": {}, "model": {"hidden_dim": 64}}


def test_sections_become_typed_dataclasses_with_overrides():
    config = load_config(None, ["model.hidden_dim=128", "optim.lr=1e-3", "encoder.name=tiny_cnn"], raw=BASE)
    assert config.model.hidden_dim == 128
    assert config.optim.lr == pytest.approx(1e-3)
    assert config.encoder == EncoderConfig(name="tiny_cnn")


def test_yaml_scientific_notation_string_is_read_as_float():
    assert build_section("optim", OptimConfig, {"lr": "4e-4"}).lr == pytest.approx(4e-4)


@pytest.mark.parametrize(
    "override, message",
    [
        ("model.hiden_dim=3", "unknown option model.hiden_dim"),
        ("model.hidden_dim=abc", "option model.hidden_dim expects int"),
        ("model.hidden_dim=0", "hidden_dim must be positive"),
        ("model.attention=fuzzy", "attention must be one of"),
        ("optim.lr=-1", "learning rates must be positive"),
        ("bogus", "must look like section.option=value"),
    ],
)
def test_bad_options_are_one_line_errors(override, message):
    with pytest.raises(CaptionerError, match=message):
        load_config(None, [override], raw=BASE)


def test_unknown_task_and_missing_file(tmp_path):
    with pytest.raises(CaptionerError, match="unknown task 'poetry'"):
        load_config(None, raw={"task": "poetry"})
    with pytest.raises(CaptionerError, match="config file not found"):
        load_config(tmp_path / "nope.yaml")
    (tmp_path / "bad.yaml").write_text("task: [unclosed")
    with pytest.raises(CaptionerError, match="not valid YAML"):
        load_config(tmp_path / "bad.yaml")
