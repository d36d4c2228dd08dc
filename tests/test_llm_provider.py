"""The LLM client through litellm against a misbehaving provider on 127.0.0.1 (OpenAI- and
Anthropic-shaped): hangs, 429/500/401, invalid JSON, empty replies; what the user is told,
what the transcript keeps, what the cache and the budgets do."""

from __future__ import annotations

import json
import re
import threading
import time
from pathlib import Path

import pytest
from fake_provider import FakeProvider, empty, hang, raw, reply, status

from eureka.errors import Interrupted
from eureka.llm.client import LLM, BudgetExceeded, LiteLLMBackend, LLMError

MESSAGES = [{"role": "system", "content": "be brief"}, {"role": "user", "content": "write a reward"}]
OPENAI = "openai/gpt-4o"
ANTHROPIC = "anthropic/claude-sonnet-4-5"


@pytest.fixture(autouse=True)
def _keys(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-ant-test-FAKE")


def _backend(p: FakeProvider, model: str = OPENAI, **kw: object) -> LiteLLMBackend:
    base = p.openai_base if model.startswith("openai/") else p.base
    options: dict[str, object] = {"timeout": 1.0, "retries": 1, "backoff": 0.05, **kw}
    return LiteLLMBackend(model, base, **options)  # type: ignore[arg-type]


def _entries(path: Path) -> list[dict[str, object]]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_a_hung_provider_is_waited_for_visibly_and_given_up_with_the_timeout_named(tmp_path: Path) -> None:
    notices: list[str] = []
    with FakeProvider(hang()) as p:
        llm = LLM(_backend(p), transcript=tmp_path / "t.jsonl", on_wait=notices.append, notice_every=0.4)
        start = time.monotonic()
        with pytest.raises(LLMError) as err:
            llm.sample(MESSAGES, 1)
        took = time.monotonic() - start
        assert len(p.requests) == 2  # our two tries, no hidden SDK retries
    assert re.fullmatch(
        rf"{OPENAI}: gave up after 2 tries in \d s: no reply within the request timeout of 1 s at "
        rf"{p.openai_base}; raise --request-timeout, or check that the provider is up",
        str(err.value),
    )
    assert took < 6
    assert re.fullmatch(rf"waiting for {OPENAI} \(attempt 1/2, \d s\)", notices[0])
    assert any(n.startswith(f"waiting for {OPENAI} (attempt 2/2, ") for n in notices)
    (entry,) = _entries(tmp_path / "t.jsonl")
    assert entry["error"] == str(err.value) and entry["replies"] == []


def test_cancel_ends_a_call_in_flight_at_once() -> None:
    with FakeProvider(hang()) as p:
        llm = LLM(_backend(p, timeout=20.0))
        threading.Timer(0.3, llm.cancel).start()
        start = time.monotonic()
        with pytest.raises(Interrupted):
            llm.sample(MESSAGES, 1)
        assert time.monotonic() - start < 2
        with pytest.raises(Interrupted):
            llm.sample(MESSAGES, 1)  # and no new call starts
        assert len(p.requests) == 1


@pytest.mark.parametrize("model", [OPENAI, ANTHROPIC])
def test_failures_print_nothing_but_our_one_line(model: str, capfd: pytest.CaptureFixture[str]) -> None:
    with FakeProvider(status(500, "upstream exploded"), reply("fine")) as p:
        assert [c.text for c in _backend(p, model).complete(MESSAGES, 1, 1.0)] == ["fine"]  # retried
    with FakeProvider(status(500, "upstream exploded")) as p, pytest.raises(LLMError) as err:
        _backend(p, model).complete(MESSAGES, 1, 1.0)
    assert re.fullmatch(
        rf"{model}: gave up after 2 tries in \d s: the provider failed \(500\): upstream exploded; "
        "resume later",
        str(err.value),
    )
    assert "\n" not in str(err.value)
    assert "Exception" not in str(err.value) and "litellm." not in str(err.value)
    out, errors = capfd.readouterr()
    for noise in ("Give Feedback", "LiteLLM.Info", "Provider List", "\x1b["):
        assert noise not in out + errors


@pytest.mark.parametrize("model", [OPENAI, ANTHROPIC])
def test_a_body_that_is_not_json_is_named_and_kept_in_the_transcript(model: str, tmp_path: Path) -> None:
    page = "<html><body>502 Bad Gateway (nginx)</body></html>"
    with FakeProvider(raw(page)) as p:
        llm = LLM(_backend(p, model), transcript=tmp_path / "t.jsonl")
        with pytest.raises(LLMError) as err:
            llm.sample(MESSAGES, 1)
        assert len(p.requests) == 1  # a wrong URL does not improve with tries
    where = p.openai_base if model == OPENAI else p.base
    assert str(err.value) == (
        f"{model}: the provider at {where} returned an invalid response (not JSON): {page!r}; "
        "check --api-base (an OpenAI-compatible server's URL usually ends in /v1)"
    )
    (entry,) = _entries(tmp_path / "t.jsonl")
    assert entry["raw"] == page


def test_a_rejected_key_is_one_line_without_retries() -> None:
    with FakeProvider(status(401, "invalid x-api-key")) as p, pytest.raises(LLMError) as err:
        _backend(p).complete(MESSAGES, 1, 1.0)
    assert len(p.requests) == 1
    assert str(err.value) == (
        f"{OPENAI}: the provider at {p.openai_base} rejected the API key; set a valid key "
        "(for example OPENAI_API_KEY) or choose another --model"
    )


def test_a_missing_key_is_named_at_once_not_retried_as_a_provider_failure(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """litellm raised 'Missing credentials' as a 500: three tries, then 'resume later'."""
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    start = time.monotonic()
    with pytest.raises(LLMError) as err:
        LiteLLMBackend("gpt-4o", None, timeout=1.0, retries=2, backoff=1.0).complete(MESSAGES, 1, 1.0)
    assert time.monotonic() - start < 1.0  # no backoff: not retried
    assert str(err.value) == (
        "gpt-4o: OPENAI_API_KEY is not set; export it, or run without a provider (--model none, or no "
        "--model for the embedded model)"
    )


def test_rate_limits_are_retried_with_backoff_then_given_up() -> None:
    with FakeProvider(status(429, "slow down")) as p, pytest.raises(LLMError) as err:
        _backend(p, retries=2, backoff=0.2).complete(MESSAGES, 1, 1.0)
    assert len(p.requests) == 3
    gaps = [b["time"] - a["time"] for a, b in zip(p.requests, p.requests[1:], strict=False)]
    assert gaps[0] >= 0.2 and gaps[1] >= 0.4  # exponential backoff
    assert re.match(rf"{OPENAI}: gave up after 3 tries in \d s: rate limited \(429\): ", str(err.value))
    assert "slow down" in str(err.value)


def test_the_cache_keys_on_where_the_request_goes_and_costs_nothing(tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    with FakeProvider(reply("from A")) as a:
        first = LLM(_backend(a), cache_dir=cache, transcript=tmp_path / "a.jsonl").sample(MESSAGES, 1)
    with FakeProvider(reply("from B")) as b:
        other = LLM(_backend(b), cache_dir=cache).sample(MESSAGES, 1)
        assert len(b.requests) == 1  # another server: not served from A's cache
        smaller = LLM(_backend(b, max_tokens=64), cache_dir=cache).sample(MESSAGES, 1)
        assert len(b.requests) == 2  # another max_tokens: asked again
    assert [first[0].text, other[0].text, smaller[0].text] == ["from A", "from B", "from B"]
    with FakeProvider(status(500)) as a_again:  # same URL shape, but a new port: a new server
        pass
    again_llm = LLM(_backend(a), cache_dir=cache, transcript=tmp_path / "again.jsonl")
    again = again_llm.sample(MESSAGES, 1)  # A is gone; its replies come from the cache
    assert again[0].text == "from A" and again[0].cached and not a_again.requests
    (entry,) = _entries(tmp_path / "again.jsonl")
    assert entry["cached"] is True and entry["cost"] == 0 and entry["tokens_in"] == 0
    assert again_llm.usage.cost == 0 and again_llm.usage.tokens_in == 0
    assert _entries(tmp_path / "a.jsonl")[0]["cost"] > 0


def test_a_repeated_request_gets_new_samples_not_the_cache(tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    with FakeProvider(reply("one"), reply("two"), reply("three")) as p:
        llm = LLM(_backend(p), cache_dir=cache)
        assert [llm.sample(MESSAGES, 1)[0].text for _ in range(2)] == ["one", "two"]
        assert len(p.requests) == 2
        rerun = LLM(_backend(p), cache_dir=cache)  # the same command again: reproduced from the cache
        assert [rerun.sample(MESSAGES, 1)[0].text for _ in range(2)] == ["one", "two"]
        assert [rerun.sample(MESSAGES, 1)[0].text] == ["three"]
        assert len(p.requests) == 3


def test_an_empty_reply_arrives_as_an_empty_text() -> None:
    with FakeProvider(empty()) as p:
        assert [c.text for c in _backend(p).complete(MESSAGES, 2, 1.0)] == ["", ""]


@pytest.mark.parametrize("model", [OPENAI, ANTHROPIC])
def test_a_lone_surrogate_in_a_reply_is_kept_as_a_replacement_character(model: str, tmp_path: Path) -> None:
    """JSON may escape half a UTF-16 pair (`\\ud800`); no UTF-8 file can hold it, and the reply
    is written to the cache, the transcript and response.md."""
    with FakeProvider(reply("x = 1  # \ud800 \udfff")) as p:  # sent as JSON escapes
        llm = LLM(_backend(p, model), cache_dir=tmp_path / "cache", transcript=tmp_path / "t.jsonl")
        (completion,) = llm.sample(MESSAGES, 1)
    assert completion.text == "x = 1  # \ufffd \ufffd"
    (tmp_path / "response.md").write_text(completion.text)
    assert _entries(tmp_path / "t.jsonl")[0]["replies"] == [completion.text]
    (cached,) = LLM(_backend(p, model), cache_dir=tmp_path / "cache").sample(MESSAGES, 1)
    assert cached.cached and cached.text == completion.text


@pytest.mark.parametrize("model", [OPENAI, ANTHROPIC])
def test_every_request_says_max_tokens(model: str) -> None:
    with FakeProvider(reply("ok")) as p:
        _backend(p, model).complete(MESSAGES, 1, 1.0)
        _backend(p, model, max_tokens=300).complete(MESSAGES, 1, 1.0)
    assert [r["body"]["max_tokens"] for r in p.requests] == [4096, 300]


def test_a_call_that_could_pass_the_cost_budget_is_not_sent() -> None:
    with FakeProvider(reply("ok")) as p:
        llm = LLM(_backend(p), max_cost=0.0001)
        with pytest.raises(BudgetExceeded) as err:
            llm.sample(MESSAGES, 8)
        assert not p.requests and llm.usage.cost == 0
        roomy = LLM(_backend(p, max_tokens=100), max_cost=0.01)
        roomy.sample(MESSAGES, 1)
        assert len(p.requests) == 1 and 0 < roomy.usage.cost <= 0.01
    assert str(err.value).startswith("the next call could cost $0.")
    assert str(err.value).endswith(
        "prompt tokens + 8 × 4,096 reply tokens), more than the $0.0001 left of the cost budget of "
        "$0.0001; raise --max-cost, or lower --samples or --reply-tokens"
    )


def test_a_call_that_could_pass_the_token_budget_is_not_sent() -> None:
    with FakeProvider(reply("ok")) as p:
        llm = LLM(_backend(p, max_tokens=500), max_tokens=1000)
        with pytest.raises(BudgetExceeded, match=r"could use 1,0\d\d tokens .* left of the token budget"):
            llm.sample(MESSAGES, 2)
        assert not p.requests
