"""Finding the images among files, folders and patterns: by content, sorted, each once, loops reported."""

import os

import pytest
from PIL import Image

from captioner.data.discovery import find_images
from captioner.errors import CaptionerError


@pytest.fixture
def album(tmp_path):
    """album/ b.jpg, a.png, IMG_0001 (a JPEG without extension), notes.jpg (text), .DS_Store, trip/ c.jpg, trip/up → .."""
    root = tmp_path / "album"
    (root / "trip").mkdir(parents=True)
    for name, fmt in (("b.jpg", "JPEG"), ("a.png", "PNG"), ("IMG_0001", "JPEG"), ("trip/c.jpg", "JPEG")):
        Image.new("RGB", (8, 8), (200, 40, 40)).save(root / name, fmt)
    (root / "notes.jpg").write_text("not a picture")
    (root / ".DS_Store").write_bytes(b"\0\1\2")
    os.symlink("..", root / "trip" / "up")
    return root


def names(paths, root):
    return [str(p.relative_to(root)) for p in paths]


def test_a_folder_gives_its_images_sorted_and_lists_the_rest_as_skipped(album):
    found = find_images([album])
    assert names(found.images, album) == ["IMG_0001", "a.png", "b.jpg"]  # by content: IMG_0001 has no extension
    assert found.skipped == [f"{album / 'notes.jpg'}: not an image file PIL can read"]  # .DS_Store is hidden: ignored
    assert found.notes == [f"{album}: 1 subfolder(s) not searched; --recursive searches them"]


def test_recursive_search_reports_a_symbolic_link_loop_instead_of_following_it(album):
    found = find_images([album], recursive=True)
    assert names(found.images, album) == ["IMG_0001", "a.png", "b.jpg", "trip/c.jpg"]
    assert any("trip/up: symbolic link loop" in s for s in found.skipped)


def test_patterns_files_and_folders_mix_and_each_image_counts_once(album, monkeypatch):
    monkeypatch.chdir(album)
    found = find_images(["b.jpg", "*.jpg", "**/*.jpg", "."], recursive=True)
    assert [str(p) for p in found.images] == ["b.jpg", "trip/c.jpg", "IMG_0001", "a.png"]  # order of the inputs
    found = find_images(["**/*.jpg"])  # without --recursive, ** is a single level as in the shell
    assert [str(p) for p in found.images] == ["trip/c.jpg"]


def test_the_output_file_is_never_taken_as_an_input(album):
    found = find_images([album], exclude=[album / "b.jpg"])
    assert names(found.images, album) == ["IMG_0001", "a.png"]


@pytest.mark.parametrize("make, inputs, message", [
    (lambda root: (root / "notes.txt").write_text("x"), ["{root}"], r"no images found in .* \(1 file\(s\), none an image PIL can read"),
    (lambda root: None, ["{root}/missing.jpg"], r"missing.jpg: no such file or folder$"),
    (lambda root: None, ["{root}/*.png"], r"\*\.png: no file matches this pattern$"),
    (lambda root: (root / "notes.jpg").write_text("x"), ["{root}/notes.jpg"], r"notes.jpg: not an image file PIL can read$"),
])
def test_nothing_to_caption_is_one_line_naming_why(tmp_path, make, inputs, message):
    make(tmp_path)
    with pytest.raises(CaptionerError, match=message) as error:
        find_images([i.format(root=tmp_path) for i in inputs])
    assert "\n" not in str(error.value)
