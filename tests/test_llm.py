"""The LLM client, offline: litellm's mock_response, a queued fake, recorded transcripts."""

from __future__ import annotations

import json
import threading
from pathlib import Path

import litellm
import pytest
from conftest import FAKE_KEY, QueuedBackend

from eureka.llm.client import (
    LLM,
    LOCAL_MODEL,
    BudgetExceeded,
    LiteLLMBackend,
    LLMError,
    ReplayBackend,
    default_model,
    first_difference,
)
from eureka.types import write_whole

MESSAGES = [{"role": "system", "content": "be brief"}, {"role": "user", "content": "write a reward"}]


def test_litellm_samples_n_natively_and_records_the_exchange(tmp_path: Path) -> None:
    transcript = tmp_path / "transcript.jsonl"
    llm = LLM(
        LiteLLMBackend("gpt-4o", extra={"mock_response": "```python\nx = 1\n```"}), transcript=transcript
    )
    replies = llm.sample(MESSAGES, 3)
    assert [r.text for r in replies] == ["```python\nx = 1\n```"] * 3
    entry = json.loads(transcript.read_text())
    assert entry["model"] == "gpt-4o" and entry["messages"] == MESSAGES and len(entry["replies"]) == 3
    assert entry["tokens_in"] > 0 and entry["tokens_out"] > 0 and entry["cost"] > 0
    assert llm.usage.calls == 1 and llm.usage.cost == pytest.approx(entry["cost"])
    assert FAKE_KEY not in transcript.read_text()


def test_providers_without_n_get_parallel_requests() -> None:
    backend = LiteLLMBackend("anthropic/claude-3-haiku-20240307", extra={"mock_response": "ok"})
    assert not backend._supports_n()
    assert [c.text for c in backend.complete(MESSAGES, 3, 1.0)] == ["ok", "ok", "ok"]


def test_rate_limits_are_retried_then_reported_in_one_line() -> None:
    backend = LiteLLMBackend(
        "gpt-4o", retries=2, backoff=0.01, extra={"mock_response": "litellm.RateLimitError"}
    )
    with pytest.raises(LLMError) as err:
        backend.complete(MESSAGES, 1, 1.0)
    assert str(err.value).startswith("gpt-4o: gave up after 3 tries in 0 s: rate limited (429): ")
    assert "\n" not in str(err.value)


def test_bad_key_is_one_clear_line() -> None:
    rejected = litellm.AuthenticationError(message="Incorrect API key", llm_provider="openai", model="gpt-4o")
    with pytest.raises(LLMError) as err:
        LiteLLMBackend("gpt-4o", extra={"mock_response": rejected}).complete(MESSAGES, 1, 1.0)
    assert str(err.value) == (
        "gpt-4o: the provider rejected the API key; set a valid key (for example OPENAI_API_KEY) "
        "or choose another --model"
    )


def test_identical_requests_come_from_the_cache(tmp_path: Path) -> None:
    backend = QueuedBackend(["a", "b", "c"])
    first = LLM(backend, cache_dir=tmp_path / "cache").sample(MESSAGES, 2)
    llm = LLM(backend, cache_dir=tmp_path / "cache", transcript=tmp_path / "t.jsonl")  # a rerun
    again = llm.sample(MESSAGES, 2)
    assert [r.text for r in again] == [r.text for r in first] == ["a", "b"]
    assert all(r.cached for r in again) and len(backend.history) == 1
    assert llm.usage.tokens_in == 0  # cached replies cost nothing
    other = llm.sample([*MESSAGES, {"role": "user", "content": "more"}], 1)
    assert other[0].text == "c" and not other[0].cached
    uncached = LLM(QueuedBackend(["z", "y"]), cache_dir=None)
    assert uncached.sample(MESSAGES, 2)[0].text == "z"


def test_a_cache_entry_left_half_written_is_asked_again_and_entries_are_written_whole(tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    LLM(QueuedBackend(["a", "b"]), cache_dir=cache).sample(MESSAGES, 2)
    entries = sorted(cache.iterdir())
    assert len(entries) == 2 and not [e for e in entries if not e.name.endswith(".json")]  # no temporaries
    cut = entries[0].read_text()
    entries[0].write_text(cut[: len(cut) // 2])  # what a plain write cut by a kill would leave
    backend = QueuedBackend(["c", "d"])
    assert [r.text for r in LLM(backend, cache_dir=cache).sample(MESSAGES, 2)] == ["c", "d"]
    assert len(backend.history) == 1
    assert [r.text for r in LLM(QueuedBackend([]), cache_dir=cache).sample(MESSAGES, 2)] == ["c", "d"]

    # two runs sharing the cache: a reader never sees another's write half done
    path, text = cache / "shared.json", json.dumps({"text": "x" * 500_000})
    write_whole(path, text)
    done = threading.Event()

    def write() -> None:
        for _ in range(100):
            write_whole(path, text)
        done.set()

    writer = threading.Thread(target=write)
    writer.start()
    reads = 0
    while not done.is_set():
        assert len(path.read_text()) == len(text)
        reads += 1
    writer.join()
    assert reads > 0 and sorted(p.name for p in cache.iterdir()) == sorted(
        [*(e.name for e in entries), path.name]
    )


def test_budgets_stop_before_the_next_call() -> None:
    llm = LLM(QueuedBackend(["a", "b"]), max_tokens=150)
    llm.sample(MESSAGES, 1)
    with pytest.raises(BudgetExceeded) as err:
        llm.sample(MESSAGES, 1)
    assert str(err.value) == "the token budget of 150 is spent"
    costly = LLM(QueuedBackend(["a", "b"]), max_cost=0.001)
    costly.sample(MESSAGES, 1)
    with pytest.raises(BudgetExceeded, match=r"the cost budget of \$0.001 is spent"):
        costly.sample(MESSAGES, 1)


def test_replay_serves_recorded_replies_and_names_differences(tmp_path: Path) -> None:
    transcript = tmp_path / "transcript.jsonl"
    LLM(QueuedBackend(["one", "two"]), transcript=transcript).sample(MESSAGES, 2)
    replay = LLM(ReplayBackend(tmp_path))
    assert [r.text for r in replay.sample(MESSAGES, 2)] == ["one", "two"]
    with pytest.raises(LLMError, match=r"all 1 exchanges of .* are used") as used:
        replay.sample(MESSAGES, 2)
    assert not used.value.resumable
    with pytest.raises(LLMError) as more:
        LLM(ReplayBackend(tmp_path)).sample(MESSAGES, 3)
    assert (
        str(more.value)
        == "replay: exchange 1 recorded 2 replies, 3 asked (replay with --samples 2, the recorded run's)"
    )
    changed = [MESSAGES[0], {"role": "user", "content": "write a penalty"}]
    with pytest.raises(LLMError) as err:
        LLM(ReplayBackend(transcript)).sample(changed, 1)
    assert str(err.value) == (
        f"replay: a prompt differs from the recording {transcript} (nearest is exchange 1): "
        "message 2 (user), line 1: recorded 'write a reward', now 'write a penalty'"
    )
    assert not err.value.resumable and LLMError("the provider is down").resumable
    with pytest.raises(LLMError, match=r"replay: .* not found"):
        ReplayBackend(tmp_path / "missing")
    # a run killed while writing its transcript, then resumed: the cut line is skipped
    whole = transcript.read_text()
    transcript.write_text(whole[: len(whole) // 2] + "\n" + whole)
    assert [r.text for r in LLM(ReplayBackend(tmp_path)).sample(MESSAGES, 2)] == ["one", "two"]


def test_replay_tolerates_drifting_statistics_but_not_words(tmp_path: Path) -> None:
    """Training is not bit-reproducible across machines: a reflection whose numbers differ
    from the recording's still replays (and is counted), unless the replay is strict."""
    recorded = [*MESSAGES, {"role": "user", "content": "upright: [0.91, 0.97], Max: 0.97, F 500"}]
    LLM(QueuedBackend(["better"]), transcript=tmp_path / "transcript.jsonl").sample(recorded, 1)
    now = [*MESSAGES, {"role": "user", "content": "upright: [0.9, 1e-3], Max: -0.5, F 498.5"}]
    backend = ReplayBackend(tmp_path)
    assert [r.text for r in LLM(backend).sample(now, 1)] == ["better"]
    assert backend.drifted == 1
    with pytest.raises(LLMError, match=r"line 1: recorded 'upright: \[0.91, 0.97\], Max: 0.97, F 500'"):
        LLM(ReplayBackend(tmp_path, strict=True)).sample(now, 1)
    worded = [*MESSAGES, {"role": "user", "content": "upright: [0.91, 0.97], Min: 0.97, F 500"}]
    with pytest.raises(LLMError, match=r"recorded .*Max.*now .*Min"):
        LLM(ReplayBackend(tmp_path)).sample(worded, 1)
    # the error names the first difference in words, past lines whose numbers merely drifted
    two_lines = {"role": "user", "content": "upright: [0.9, 0.8]\nanalysis: fell left"}
    LLM(QueuedBackend(["x"]), transcript=tmp_path / "two.jsonl").sample([*MESSAGES, two_lines], 1)
    drifted_and_worded = {"role": "user", "content": "upright: [0.5, 0.8]\nanalysis: fell right"}
    with pytest.raises(LLMError, match=r"line 2: recorded 'analysis: fell left', now 'analysis: fell right'"):
        LLM(ReplayBackend(tmp_path / "two.jsonl")).sample([*MESSAGES, drifted_and_worded], 1)


def test_first_difference() -> None:
    assert first_difference(MESSAGES, MESSAGES) is None
    assert first_difference(MESSAGES, MESSAGES[:1]) == "1 messages, the recording has 2"
    assert first_difference(MESSAGES, [MESSAGES[1], MESSAGES[0]]) == (
        "message 1 has role 'user', the recording has 'system'"
    )


def test_default_model(monkeypatch: pytest.MonkeyPatch) -> None:
    assert default_model() == "gpt-4o"  # the fake OPENAI_API_KEY of conftest
    monkeypatch.delenv("OPENAI_API_KEY")
    monkeypatch.delenv("ANTHROPIC_API_KEY", raising=False)
    monkeypatch.delenv("GEMINI_API_KEY", raising=False)
    assert default_model() == LOCAL_MODEL
