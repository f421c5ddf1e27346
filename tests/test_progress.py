"""Progress on a pipe or log file is whole lines with a rate and time left; --quiet shows nothing."""

import io
import re

from captioner.progress import progress, say


def test_without_a_terminal_progress_is_plain_lines_with_rate_and_eta():
    log = io.StringIO()  # not a terminal, like a pipe or a log file
    bar = progress(40, "caption", stream=log, interval=0)
    for step in range(40):
        bar.update(1)
        if step == 10:
            say("captioner caption: skipped x.txt: not an image file PIL can read", log)
    bar.close()
    lines = log.getvalue().splitlines()
    assert "\r" not in log.getvalue() and len(lines) > 3
    assert "captioner caption: skipped x.txt: not an image file PIL can read" in lines  # a whole line of its own
    assert re.fullmatch(r"caption: 100%\|#+\| 40/40 \[\d\d:\d\d<00:00, +[\d.]+img/s\]", lines[-1])


def test_quiet_prints_nothing_and_short_work_prints_nothing_by_default():
    for quiet, interval in ((True, 0), (False, 30)):
        log = io.StringIO()
        bar = progress(5, "caption", quiet=quiet, stream=log, interval=interval)
        bar.update(5)
        bar.close()
        assert log.getvalue() == ""
