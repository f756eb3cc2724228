"""Run directories: records appended line by line, JSON replaced atomically, read back."""

from __future__ import annotations

import json
from pathlib import Path

from harness.records import RequestRecord
from harness.store import RunWriter, read_records, write_json_atomic


def record(request_id: int) -> RequestRecord:
    return RequestRecord(
        request_id=request_id,
        concurrency=2,
        worker=1,
        start_mono_s=1.0,
        end_mono_s=1.5,
        ttft_ms=12.5,
        ttfb_ms=3.0,
        chunk_times_ms=[12.5, 20.0],
        output_tokens=2,
        output_tokens_source="usage",
    )


def test_records_are_on_disk_as_soon_as_appended(tmp_path: Path) -> None:
    writer = RunWriter(tmp_path)
    writer.append_record(record(0))
    # not closed yet: the line must already be readable
    assert [r.request_id for r in read_records(tmp_path)] == [0]
    writer.close()


def test_records_round_trip_with_their_e2e(tmp_path: Path) -> None:
    writer = RunWriter(tmp_path)
    writer.append_record(record(0))
    writer.close()
    line = json.loads((tmp_path / "requests.jsonl").read_text())
    assert line["e2e_ms"] == 500.0
    assert read_records(tmp_path) == [record(0)]


def test_a_last_line_cut_by_a_crash_is_skipped(tmp_path: Path) -> None:
    writer = RunWriter(tmp_path)
    writer.append_record(record(0))
    writer.close()
    with (tmp_path / "requests.jsonl").open("a") as handle:
        handle.write('{"request_id": 1, "concurr')
    assert [r.request_id for r in read_records(tmp_path)] == [0]


def test_json_is_replaced_whole_and_leaves_no_temporary_file(tmp_path: Path) -> None:
    path = tmp_path / "summary.json"
    write_json_atomic(path, {"levels": [1]})
    write_json_atomic(path, {"levels": [1, 2]})
    assert json.loads(path.read_text()) == {"levels": [1, 2]}
    assert [p.name for p in tmp_path.iterdir()] == ["summary.json"]
