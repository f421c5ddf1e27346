import subprocess
import sys

import pytest

from captioner import __version__
from captioner.cli import main


def run_cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "captioner", *args], capture_output=True, text=True)


def test_version_and_help():
    assert run_cli("--version").stdout.strip() == f"captioner {__version__}"
    result = run_cli("--help")
    assert result.returncode == 0 and "COMMAND" in result.stdout


@pytest.mark.parametrize("args, message", [
    (["caption", "photo.jpg", "--beam", "0"], "argument --beam: must be at least 1, got 0"),
    (["caption", "photo.jpg", "--max-len", "-3"], "argument --max-len: must be at least 1, got -3"),
    (["caption", "photo.jpg", "--content-repeat-penalty", "-1"], "argument --content-repeat-penalty: must be 0 or more, got -1"),
    (["evaluate", "--annotations", "a.json", "--images", "i", "--content-repeat-penalty", "nan"],
     "argument --content-repeat-penalty: must be 0 or more, got nan"),
    (["evaluate", "--annotations", "a.json", "--images", "i", "--workers", "-1"], "argument --workers: must be 0 or more, got -1"),
    (["extract-features", "--annotations", "a.json", "--images", "i", "--out", "o", "--batch-size", "0"],
     "argument --batch-size: must be at least 1, got 0"),
    (["caption", "photo.jpg", "--colour"], "unrecognized arguments: --colour"),
])
def test_impossible_values_and_unknown_options_are_named(args, message, capsys):
    with pytest.raises(SystemExit) as exit_:
        main(args)
    assert exit_.value.code == 2
    err = capsys.readouterr().err
    assert message in err.splitlines()[-1]  # the last line says what is wrong; the one above is the usage
