"""The benchmark suite on tiny sizes: real measurements, checked for shape, never for speed."""

import argparse
import math
import re

import pytest

from captioner.cli import main


def test_quick_rows_are_ratios_of_two_real_measurements():
    from captioner.benchmarks.core import run_suite

    rows = run_suite(["decoder-training", "beam-search"], quick=True, log=lambda message: None)
    assert [row.benchmark for row in rows] == ["decoder-training", "beam-search"]  # in the order asked
    for row in rows:
        entry = row.as_dict()
        assert entry["ours"] > 0 and entry["baseline"] > 0 and math.isfinite(entry["ratio"])
        assert math.isclose(entry["ratio"], entry["ours"] / entry["baseline"])  # both rows are throughputs
        assert entry["target"].startswith("≥") and entry["met"] in (True, False)


def test_benchmark_command_writes_the_table_and_how_to_reproduce_it(tmp_path, capsys):
    out = tmp_path / "PERFORMANCE.md"
    assert main(["benchmark", "--quick", "--only", "beam-search", "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert re.search(r"^\| `beam-search` \|.*\| \d+\.\d\d× \| ≥ 6× \|", printed, flags=re.M)
    report = out.read_text()
    assert "| Benchmark | Case | Ours | Baseline | Ratio | Target | Met | Notes |" in report
    assert "Reproduce: `captioner benchmark --only beam-search --quick`" in report
    assert "## Machine" in report and "CPUs:" in report and "Intra-op threads for every side: 1" in report
    assert "`beam-search`: Captions/s of batched beam search" in report


def test_quick_or_partial_runs_leave_the_shipped_report_alone(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert main(["benchmark", "--quick", "--only", "decoder-training"]) == 0
    assert "`decoder-training`" in capsys.readouterr().out
    assert not (tmp_path / "docs").exists()


def test_unknown_benchmark_is_refused_naming_the_known_ones(capsys):
    assert main(["benchmark", "--only", "warp-drive"]) == 1
    error = capsys.readouterr().err
    assert "unknown benchmark 'warp-drive'" in error and "decoder-training" in error


def test_folder_captioning_times_the_real_command_against_the_bare_encoder():
    from captioner.benchmarks.core import run_suite

    [row] = run_suite(["folder-captioning"], quick=True, log=lambda message: None)
    assert row.unit == "images/s" and row.ours > 0 and row.baseline > 0 and math.isclose(row.ratio, row.ours / row.baseline)
    assert str(row.target) == "≥ 0.8×" and "24 JPEGs of 640×480" in row.case
    assert re.fullmatch(r"CPU time per image, each stage alone: decode\+resize [\d.]+ ms, encoder [\d.]+ ms, beam 3 [\d.]+ ms", row.note)


def test_scale_shrinks_the_collections_folders_and_is_said_on_the_command_line(tmp_path, capsys):
    from captioner.benchmarks.core import Settings
    from captioner.cli.benchmark import _command

    assert Settings(quick=False, workdir=tmp_path, scale=0.05).count(2000) == 100
    assert Settings(quick=False, workdir=tmp_path).count(10000) == 10000
    with pytest.raises(SystemExit):
        main(["benchmark", "--scale", "0"])
    assert "must be in (0, 1], got 0" in capsys.readouterr().err
    args = argparse.Namespace(only=["folder-captioning"], quick=False, threads=1, checkpoint=None, scale=0.05)
    assert _command(args) == "captioner benchmark --only folder-captioning --scale 0.05"


def test_allocator_row_compares_two_fresh_processes_running_the_encoder():
    from captioner.benchmarks.core import run_suite

    [row] = run_suite(["allocator"], quick=True, log=lambda message: None)
    assert row.unit == "images/s" and row.ours > 0 and row.baseline > 0 and math.isclose(row.ratio, row.ours / row.baseline)
    assert row.target is None and "fresh processes" in row.case
