"""Turning what a user typed (files, folders, glob patterns) into the images to process, in a stable order.

Images are recognised by content, not by extension: PIL must identify a file from its first bytes (decoding
it fully happens later, in the loader, which reports a truncated one); other files are listed as skipped. Hidden entries (".name") are not searched, a
symbolic link back into a folder being searched is reported instead of followed, and each image appears once.
"""

import fnmatch
import glob
import os
import warnings
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from PIL import Image, UnidentifiedImageError

from captioner.errors import CaptionerError


@dataclass
class Found:
    images: list[Path] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)  # "path: reason", one per input that is not an image
    notes: list[str] = field(default_factory=list)  # hints that are not problems (subfolders not searched)
    searched: int = 0  # files looked at in folders and patterns


def find_images(inputs: Sequence[str | Path], recursive: bool = False, exclude: Iterable[str | Path] = ()) -> Found:
    """The images among `inputs`: in the order given, each folder or pattern expanded in sorted order.

    `exclude`: files never to treat as inputs (the run's own output). Raises CaptionerError when nothing at
    all is an image, naming why.
    """
    search = _Search(recursive, {_identity(Path(p)) for p in exclude if Path(p).exists()})
    for item in inputs:
        search.add_input(str(item))
    found = search.found
    if not found.images:
        raise CaptionerError(_nothing_found(inputs, found))
    return found


def image_problem(path: Path) -> str | None:
    """None if PIL recognises the file as an image from its header, else why not (decoding happens later)."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # a decompression-bomb warning is the decoder's to report
            with Image.open(path):
                return None
    except UnidentifiedImageError:
        return "not an image file PIL can read"
    except Image.DecompressionBombError:
        return None  # an image; load_image refuses it with the full reason
    except OSError as e:  # strerror: the file system's refusal; without it: PIL could not parse the header
        return f"cannot read it ({e.strerror})" if e.strerror else f"corrupt or truncated image ({e})"


class _Search:
    def __init__(self, recursive: bool, exclude: set[tuple[int, int]]) -> None:
        self.recursive, self.found = recursive, Found()
        self._seen_files = set(exclude)
        self._seen_folders: set[tuple[int, int]] = set()
        self._subfolders_left = 0

    def add_input(self, text: str) -> None:
        path = Path(text)
        self._seen_folders = set()  # per input: a folder given twice is searched twice (its files still count once)
        if path.is_dir():
            self._folder(path, ancestors=())
        elif path.exists():
            self._file(path)
        elif glob.has_magic(text):
            self._pattern(text)
        else:
            self.found.skipped.append(f"{path}: no such file or folder" if not path.is_symlink() else f"{path}: broken symbolic link")
        if self._subfolders_left:
            self.found.notes.append(f"{path}: {self._subfolders_left} subfolder(s) not searched; --recursive searches them")
            self._subfolders_left = 0

    def _pattern(self, pattern: str) -> None:
        before = len(self.found.images) + len(self.found.skipped)
        if self.recursive and "**" in pattern:
            self._recursive_pattern(Path(pattern))  # glob.glob would follow symbolic link loops
        else:
            for match in map(Path, sorted(glob.glob(pattern))):
                self._folder(match, ancestors=()) if match.is_dir() else self._file(match)
        if len(self.found.images) + len(self.found.skipped) == before:
            self.found.skipped.append(f"{pattern}: no file matches this pattern")

    def _recursive_pattern(self, pattern: Path) -> None:
        """`**` patterns: walk from the part without wildcards, keeping the files whose path matches."""
        fixed = next((i for i, part in enumerate(pattern.parts) if glob.has_magic(part)), len(pattern.parts))
        base, wanted = Path(*pattern.parts[:fixed]), pattern.parts[fixed:]
        if base.is_dir():
            self._folder(base, ancestors=(), keep=lambda path: _matches(path.relative_to(base).parts, wanted))

    def _folder(self, folder: Path, ancestors: tuple[tuple[int, int], ...], keep: Callable[[Path], bool] | None = None) -> None:
        identity = _identity(folder)
        if identity in ancestors:
            self.found.skipped.append(f"{folder}: symbolic link loop (leads back to a folder being searched); not followed")
            return
        if identity in self._seen_folders:
            return  # reached again by another link: its images are already listed
        self._seen_folders.add(identity)
        try:
            entries = sorted(os.scandir(folder), key=lambda entry: entry.name)
        except OSError as e:
            self.found.skipped.append(f"{folder}: cannot list this folder ({e.strerror or e})")
            return
        for entry in entries:
            if not entry.name.startswith("."):
                self._entry(folder / entry.name, entry, (*ancestors, identity), keep)

    def _entry(self, path: Path, entry: os.DirEntry, ancestors: tuple[tuple[int, int], ...], keep: Callable | None) -> None:
        try:
            is_dir, is_file = entry.is_dir(), entry.is_file()
        except OSError as e:
            self.found.skipped.append(f"{path}: {e.strerror or e}")
            return
        if is_dir and self.recursive:
            self._folder(path, ancestors, keep)
        elif is_dir:
            self._subfolders_left += 1
        elif keep is not None and not keep(path):
            return
        elif is_file:
            self._file(path)
        elif entry.is_symlink():
            self.found.skipped.append(f"{path}: broken symbolic link")

    def _file(self, path: Path) -> None:
        identity = _identity(path)
        if identity in self._seen_files:
            return
        self._seen_files.add(identity)
        self.found.searched += 1
        problem = image_problem(path)
        if problem:
            self.found.skipped.append(f"{path}: {problem}")
        else:
            self.found.images.append(path)


def _matches(parts: Sequence[str], pattern: Sequence[str]) -> bool:
    """Path parts against pattern parts, where "**" stands for any number of folders (glob's recursive rule)."""
    if not pattern:
        return not parts
    head, rest = pattern[0], pattern[1:]
    if head == "**":
        return any(_matches(parts[i:], rest) for i in range(len(parts) + 1))
    return bool(parts) and fnmatch.fnmatchcase(parts[0], head) and _matches(parts[1:], rest)


def _identity(path: Path) -> tuple[int, int]:
    """(device, inode) of what `path` leads to: the same file or folder however it is reached."""
    try:
        stat = path.stat()
        return stat.st_dev, stat.st_ino
    except OSError:
        return -1, hash(os.path.abspath(path))  # unreadable: unique per spelling; reading it later names the problem


def _nothing_found(inputs: Sequence[str | Path], found: Found) -> str:
    if len(inputs) == 1 and len(found.skipped) == 1 and not Path(inputs[0]).is_dir():
        return found.skipped[0]  # one file or pattern, and it names no image: say why
    where = str(inputs[0]) if len(inputs) == 1 else f"the {len(inputs)} inputs"
    reasons = [f"{found.searched} file(s), none an image PIL can read"] if found.searched else found.skipped[:1]
    return f"no images found in {where}" + (f" ({'; '.join(reasons + found.notes[:1])})" if reasons or found.notes else "")
