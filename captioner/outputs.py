"""Caption files that `captioner caption --output FILE` writes, chosen by suffix, all of them resumable.

- `.jsonl`: one `{"file", "caption", "beams"?}` object per line, each line written by one `write` and flushed.
- `.csv`: a `file,caption` header, then one row per image, written the same way.
- `.json`: the COCO results format, `[{"image_id", "caption", "file"}]` when every file name carries a COCO
  image id (`000000391895.jpg`, `COCO_val2014_000000391895.jpg`), else `[{"file", "caption"}]`. A JSON list
  cannot grow line by line, so results go to a hidden `.NAME.partial.jsonl` beside it first; the list is
  written (atomically) when the run ends, and the partial file removed.

An existing file is read first and its images count as done: re-running the same command captions only the
rest. A killed run leaves only complete lines, except possibly a last one cut in the middle of its write,
which is dropped on the next start. A file that is not one of ours is refused, never overwritten, unless
`force` (which starts afresh).
"""

import contextlib
import csv
import io
import json
import os
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from captioner.errors import CaptionerError
from captioner.registry import Registry

COCO_NAME = re.compile(r"^(?:COCO_[A-Za-z]+\d{4}_)?0*(\d+)$")  # 000000391895, COCO_val2014_000000391895


@dataclass
class Record:
    file: str
    caption: str
    beams: list[tuple[str, float]] | None = None  # beam search: every final beam with its score, best first


def coco_image_id(file: str) -> int | None:
    """The COCO image id in a file name, if it has the COCO pattern, else None."""
    match = COCO_NAME.match(Path(file).stem)
    return int(match.group(1)) if match else None


class LineFile:
    """An append-only file of whole lines, each added with one write.

    Opening reads what is there as complete lines and a `partial` last line (text after the last newline: a
    write cut short by a kill). The format checks both; `open_for_append` then drops the partial line.
    """

    def __init__(self, path: Path, force: bool) -> None:
        self.path, self.force = path, force
        self.lines: list[str] = []
        self.partial = ""
        self._fd: int | None = None
        if path.exists() and not path.is_file():  # a pipe or a device: reading it could block or never end
            raise CaptionerError(f"--output {path} is not a regular file (a pipe, device or socket); give a file path")
        if path.exists() and not force:
            try:  # surrogateescape: file names that are not UTF-8 (written raw by .csv) read back as they were found
                text = path.read_bytes().decode("utf-8", "surrogateescape")
            except OSError as e:
                raise not_ours(path, f"not readable: {e.strerror or e}") from None
            complete, _, self.partial = text.rpartition("\n")
            self.lines = complete.split("\n") if complete or text.startswith("\n") else []

    def open_for_append(self) -> None:
        blocking = next((p for p in self.path.parents if p.exists() and not p.is_dir()), None)
        if blocking is not None:
            raise CaptionerError(f"cannot write {self.path}: {blocking} is a file, not a folder")
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            if self.partial:
                os.truncate(self.path, self.path.stat().st_size - len(self.partial.encode("utf-8", "surrogateescape")))
            self._fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_APPEND | (os.O_TRUNC if self.force else 0), 0o644)
        except OSError as e:
            raise CaptionerError(f"cannot write {self.path}: {e.strerror or e}") from None

    def append(self, line: str) -> None:
        """Add one line; if the write fails (disk full, a file size limit), the file is cut back to its last complete
        line and a one-line CaptionerError says so: what was written before is kept, and a rerun resumes."""
        data = (line + "\n").encode("utf-8", "surrogateescape")
        size = os.fstat(self._fd).st_size
        try:
            while data:  # a regular file takes it in one write; loop in case a signal splits it
                data = data[os.write(self._fd, data) :]
        except OSError as e:
            with contextlib.suppress(OSError):
                os.ftruncate(self._fd, size)
            raise CaptionerError(f"cannot write {self.path}: {e.strerror or e}; the captions already in it are kept, "
                                 "and running the same command again resumes") from None

    def close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None


def not_ours(path: Path, why: str) -> CaptionerError:
    return CaptionerError(f"{path} exists and is not a captioner output ({why}); "
                          "choose another --output, or pass --force to replace it")


class CaptionOutput:
    """Base of the formats: which files are done, add a record, close. `dropped_partial`: a line cut short by
    a killed run was removed on opening."""

    dropped_partial = False

    def __init__(self, path: Path) -> None:
        self.path = path
        self._done: set[str] = set()

    def is_done(self, file: str | Path) -> bool:
        return os.path.abspath(file) in self._done

    @property
    def done_count(self) -> int:
        return len(self._done)

    def add(self, record: Record) -> None:
        raise NotImplementedError

    def close(self) -> None:
        raise NotImplementedError

    def _mark_done(self, file: str) -> None:
        self._done.add(os.path.abspath(file))


OUTPUTS: Registry[type[CaptionOutput]] = Registry("output format")


def open_output(path: str | Path, force: bool = False) -> CaptionOutput:
    """The output file for `path`'s suffix (.jsonl, .json, .csv), its finished images already read."""
    path = Path(path)
    if path.is_dir():
        raise CaptionerError(f"--output {path} is a folder; give a file ending in {', '.join(OUTPUTS.names())}")
    if path.suffix.lower() not in OUTPUTS:
        raise CaptionerError(f"--output {path}: unknown format {path.suffix or '(no suffix)'}; use {', '.join(OUTPUTS.names())}")
    return OUTPUTS.get(path.suffix.lower())(path, force)


def _json_record(line: str) -> dict | None:
    try:
        entry = json.loads(line)
    except json.JSONDecodeError:
        return None
    ok = isinstance(entry, dict) and isinstance(entry.get("file"), str) and isinstance(entry.get("caption"), str)
    return entry if ok else None


def _json_line(record: Record) -> str:
    entry = {"file": record.file, "caption": record.caption}
    if record.beams and len(record.beams) > 1:
        entry["beams"] = [{"caption": text, "score": round(score, 4)} for text, score in record.beams]
    return LONE_SURROGATE.sub(lambda m: f"\\u{ord(m.group()):04x}", json.dumps(entry, ensure_ascii=False))


LONE_SURROGATE = re.compile("[\ud800-\udfff]")  # a file name that is not UTF-8, as Python reads it: JSON-escaped


JSONL_START = '{"file": '  # how every record line begins (json.dumps of a dict whose first key is "file")


@OUTPUTS.register(".jsonl")
class JsonLinesOutput(CaptionOutput):
    def __init__(self, path: Path, force: bool = False) -> None:
        super().__init__(path)
        self.file = LineFile(path, force)
        for number, line in enumerate(self.file.lines, start=1):
            entry = _json_record(line)
            if entry is None:
                raise not_ours(path, f"line {number} is not a {{\"file\", \"caption\"}} record")
            self._mark_done(entry["file"])
        if self.file.partial and not JSONL_START.startswith(self.file.partial[: len(JSONL_START)]):
            raise not_ours(path, "its last line is not a caption record")
        self.dropped_partial = bool(self.file.partial)
        self.file.lines = []  # the done set is all that is kept of them
        self.file.open_for_append()

    def add(self, record: Record) -> None:
        self.file.append(_json_line(record))  # not added to the done set: memory stays flat however long the run

    def close(self) -> None:
        self.file.close()


CSV_HEADER = "file,caption"


@OUTPUTS.register(".csv")
class CsvOutput(CaptionOutput):
    def __init__(self, path: Path, force: bool = False) -> None:
        super().__init__(path)
        self.file = LineFile(path, force)
        lines, partial = self.file.lines, self.file.partial
        if (lines and lines[0] != CSV_HEADER) or (not lines and partial and not CSV_HEADER.startswith(partial)):
            raise not_ours(path, f"its first line is not the header {CSV_HEADER!r}")
        for row in csv.reader(lines[1:]):
            if len(row) != 2:
                raise not_ours(path, f"a row has {len(row)} fields instead of 2")
            self._mark_done(row[0])
        self.dropped_partial = bool(partial)
        self.file.lines = []
        self.file.open_for_append()
        if not lines:
            self.file.append(CSV_HEADER)

    def add(self, record: Record) -> None:
        buffer = io.StringIO()
        csv.writer(buffer, lineterminator="").writerow([record.file, record.caption])
        self.file.append(buffer.getvalue())

    def close(self) -> None:
        self.file.close()


@OUTPUTS.register(".json")
class CocoJsonOutput(CaptionOutput):
    """Results accumulate in a hidden partial .jsonl; `close` writes the JSON list atomically."""

    def __init__(self, path: Path, force: bool = False) -> None:
        super().__init__(path)
        self.entries = [] if force or not path.exists() else self._read_list(path)
        for entry in self.entries:
            self._mark_done(entry["file"])
        self.journal = JsonLinesOutput(self.partial_path(path), force)
        self.dropped_partial = self.journal.dropped_partial

    @staticmethod
    def partial_path(path: Path) -> Path:
        return path.with_name(f".{path.name}.partial.jsonl")

    @staticmethod
    def _read_list(path: Path) -> list[dict]:
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
            raise not_ours(path, f"not readable as JSON: {e}") from None
        if not isinstance(data, list) or not all(isinstance(e, dict) and isinstance(e.get("file"), str)
                                                 and isinstance(e.get("caption"), str) for e in data):
            raise not_ours(path, "not a list of {\"file\", \"caption\"} entries")
        return data

    def is_done(self, file: str | Path) -> bool:
        return super().is_done(file) or self.journal.is_done(file)

    @property
    def done_count(self) -> int:
        return len(self._done | self.journal._done)

    def add(self, record: Record) -> None:
        self.journal.add(Record(record.file, record.caption))

    def close(self) -> None:
        """Write the whole list (earlier entries, then this run's), then remove the partial file."""
        from captioner.evaluation.caption_metrics import write_json_atomic

        self.journal.close()
        partial, earlier = self.partial_path(self.path), self._done
        entries = self.entries + [e for e in _read_journal(partial) if os.path.abspath(e["file"]) not in earlier]
        try:
            write_json_atomic(coco_entries(entries), self.path)
        except OSError as e:  # the partial file stays: a rerun writes the list
            raise CaptionerError(f"cannot write {self.path}: {e.strerror or e}; this run's captions are kept in "
                                 f"{partial}, and running the same command again writes the list") from None
        partial.unlink(missing_ok=True)


def _read_journal(path: Path) -> Iterator[dict]:
    if path.exists():
        for line in path.read_text(encoding="utf-8").splitlines():
            entry = _json_record(line)
            if entry is not None:
                yield entry


def coco_entries(entries: list[dict]) -> list[dict]:
    """[{"image_id", "caption", "file"}] when every file name holds a distinct COCO id, else [{"file", "caption"}]."""
    ids = [coco_image_id(e["file"]) for e in entries]
    if entries and None not in ids and len(set(ids)) == len(ids):
        return [{"image_id": i, "caption": e["caption"], "file": e["file"]} for i, e in zip(ids, entries)]
    return [{"file": e["file"], "caption": e["caption"]} for e in entries]
