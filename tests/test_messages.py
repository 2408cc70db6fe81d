"""What people and scripts read: messages are one line in a pipe, help texts say what they mean."""

from __future__ import annotations

import subprocess
import sys


def test_a_long_message_stays_one_line_in_a_pipe(tmp_path):
    folder = tmp_path / ("a-folder-with-a-rather-long-name-" * 3)
    result = subprocess.run([sys.executable, "-m", "chute.cli", "init", str(folder), "--files", "1"],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    created = [line for line in result.stdout.splitlines() if line.startswith("Created ")]
    assert len(created) == 1 and created[0].endswith("processed/")  # the whole list on its one line
    assert len(created[0]) > 80  # longer than a terminal line, and not wrapped


def test_a_watermark_reads_as_text_not_as_a_python_dict():
    from chute.ledger.watermarks import describe

    assert describe({"updated_at": "2024-05-01T12:00:00+00:00", "order_id": 4711}) == \
        "updated_at 2024-05-01 12:00:00+00:00, order_id 4711"
    assert describe(None) == "none yet" and describe(42) == "42"
