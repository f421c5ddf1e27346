import subprocess
import sys

from captioner import __version__


def run_cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "captioner", *args], capture_output=True, text=True)


def test_version_and_help():
    assert run_cli("--version").stdout.strip() == f"captioner {__version__}"
    result = run_cli("--help")
    assert result.returncode == 0 and "COMMAND" in result.stdout
