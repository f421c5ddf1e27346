"""Output files of `captioner caption --output`: written as they go, resumed, never clobbered."""

import json
import os
import sys

import pytest

from captioner.errors import CaptionerError
from captioner.outputs import Record, coco_image_id, open_output

BEAMS = [("a dog on a sofa", -0.5), ("a dog on a couch", -0.7)]


def write(path, *files, force=False):
    output = open_output(path, force=force)
    for file in files:
        output.add(Record(file, f"caption of {file}", BEAMS))
    output.close()
    return output


def test_jsonl_has_one_record_per_line_and_a_rerun_knows_what_is_done(tmp_path):
    path = tmp_path / "captions.jsonl"
    write(path, "photos/a.jpg", "photos/b.jpg")
    lines = [json.loads(line) for line in path.read_text().splitlines()]
    assert lines[0] == {"file": "photos/a.jpg", "caption": "caption of photos/a.jpg",
                        "beams": [{"caption": "a dog on a sofa", "score": -0.5}, {"caption": "a dog on a couch", "score": -0.7}]}
    again = open_output(path)
    assert again.is_done("photos/a.jpg") and again.is_done(os.path.abspath("photos/b.jpg")) and not again.is_done("photos/c.jpg")
    again.add(Record("photos/c.jpg", "a cat"))
    again.close()
    assert [json.loads(line)["file"] for line in path.read_text().splitlines()] == ["photos/a.jpg", "photos/b.jpg", "photos/c.jpg"]


def test_a_line_cut_short_by_a_kill_is_dropped_and_complete_lines_are_kept(tmp_path):
    path = tmp_path / "captions.jsonl"
    write(path, "a.jpg", "b.jpg")
    complete = path.read_text()
    path.write_text(complete + '{"file": "c.jpg", "capt')  # the kill landed inside a write
    output = open_output(path)
    assert output.dropped_partial and output.done_count == 2 and not output.is_done("c.jpg")
    output.close()
    assert path.read_text() == complete


def test_csv_has_a_header_and_rows_quoted_as_needed(tmp_path):
    path = tmp_path / "captions.csv"
    write(path, "a, with comma.jpg", "b.jpg")
    assert path.read_text().splitlines() == ["file,caption", '"a, with comma.jpg","caption of a, with comma.jpg"',
                                             "b.jpg,caption of b.jpg"]
    assert open_output(path).is_done("a, with comma.jpg")


def test_json_is_the_coco_results_format_when_file_names_carry_coco_ids(tmp_path):
    path = tmp_path / "results.json"
    output = write(path, "val/COCO_val2014_000000391895.jpg", "val/000000000042.jpg")
    assert json.loads(path.read_text()) == [
        {"image_id": 391895, "caption": "caption of val/COCO_val2014_000000391895.jpg", "file": "val/COCO_val2014_000000391895.jpg"},
        {"image_id": 42, "caption": "caption of val/000000000042.jpg", "file": "val/000000000042.jpg"},
    ]
    assert not output.partial_path(path).exists()  # the partial file is gone once the list is written
    write(path, "holiday.jpg")  # resumed with a file that has no id: every entry is keyed by its file then
    assert [set(e) for e in json.loads(path.read_text())] == [{"file", "caption"}] * 3
    assert coco_image_id("1000268201_693b08cb0e.jpg") is None  # a Flickr name is not a COCO id


def test_json_run_killed_before_it_ends_resumes_from_its_partial_file(tmp_path):
    path = tmp_path / "results.json"
    output = open_output(path)
    output.add(Record("a.jpg", "first"))  # killed here: no close(), so no list yet
    resumed = open_output(path)
    assert resumed.is_done("a.jpg") and not path.exists()
    resumed.add(Record("b.jpg", "second"))
    resumed.close()
    assert [e["file"] for e in json.loads(path.read_text())] == ["a.jpg", "b.jpg"]


@pytest.mark.parametrize("name, content, why", [
    ("notes.jsonl", '{"id": 1, "text": "my own data"}\n', "line 1 is not a"),
    ("notes.jsonl", "some text without a newline", "its last line is not a caption record"),
    ("table.csv", "name,age\nann,31\n", "its first line is not the header 'file,caption'"),
    ("data.json", '{"images": []}', 'not a list of {"file", "caption"} entries'),
])
def test_a_file_that_is_not_ours_is_refused_untouched_unless_forced(tmp_path, name, content, why):
    path = tmp_path / name
    path.write_text(content)
    with pytest.raises(CaptionerError, match="is not a captioner output") as error:
        open_output(path)
    assert why in str(error.value) and "--force" in str(error.value)
    assert path.read_text() == content
    write(path, "a.jpg", force=True)
    assert "a.jpg" in path.read_text() and "my own data" not in path.read_text()


def test_unknown_format_and_unwritable_place_are_one_line_errors(tmp_path):
    with pytest.raises(CaptionerError, match=r"unknown format \.txt; use \.csv, \.json, \.jsonl"):
        open_output(tmp_path / "captions.txt")
    (tmp_path / "file").write_text("x")
    with pytest.raises(CaptionerError, match="cannot write .*captions.jsonl: .*file is a file, not a folder"):
        open_output(tmp_path / "file" / "captions.jsonl")
    read_only = "/sys/captions.jsonl"  # sysfs: no new files there, not even for root
    if sys.platform.startswith("linux"):
        with pytest.raises(CaptionerError, match=f"cannot write {read_only}: Permission denied"):
            open_output(read_only)


@pytest.mark.parametrize("suffix", [".jsonl", ".csv", ".json"])
def test_a_file_name_that_is_not_utf8_is_written_and_known_on_resume(tmp_path, suffix):
    name = os.fsdecode(b"photos/caf\xe9.jpg")  # Latin-1 bytes, as an old camera or a Windows share names them
    path = tmp_path / f"captions{suffix}"
    write(path, name, "photos/b.jpg")
    again = open_output(path)
    assert again.is_done(name) and again.is_done("photos/b.jpg") and again.done_count == 2
    again.close()
    if suffix == ".jsonl":  # still UTF-8 JSON that any reader takes, the odd byte escaped
        assert json.loads(path.read_text(encoding="utf-8").splitlines()[0])["file"] == name
