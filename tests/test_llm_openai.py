"""The LLM layer against a fake OpenAI-compatible server on 127.0.0.1, through the real `openai` client."""
import base64
import json
import logging
import os
import signal
import subprocess
import sys
import textwrap
import time

import pytest
from PIL import Image
from pydantic import BaseModel, Field

from edulit.llm import (ChatClient, LLMCache, LLMError, LLMRequestError, OpenAIBackend, ReplayBackend, ReplayMissError,
                        StructuredOutputError, TruncatedOutput, redact, register_secret, run_batch, user_message)
from edulit.llm_testing import FakeOpenAIServer, FakeReply, rate_limited, server_error

KEY = "sk-edulit-test-SECRET-0123456789abcdef"


class Grade(BaseModel):
    score: int = Field(ge=0, le=5)
    reason: str = Field(max_length=100)


VALID = '{"score": 3, "reason": "partly right"}'


@pytest.fixture
def server():
    with FakeOpenAIServer() as fake:
        yield fake


def make_backend(server, **kwargs):
    options = dict(api_key=KEY, backoff_base=0.01, timeout=5.0)
    options.update(kwargs)
    return OpenAIBackend("fake-model", base_url=server.base_url, **options)


# Transport retries

def test_retry_after_429_and_500(server):
    server.push(rate_limited(0.3), server_error(500), "hello")
    client = ChatClient(make_backend(server))
    start = time.perf_counter()
    result = client.chat("hi")
    assert server.calls == 3
    assert result.text == "hello"
    assert result.usage.http_retries == 2
    assert time.perf_counter() - start >= 0.3  # the Retry-After wait was honoured


def test_retry_after_ms_header(server):
    server.push(FakeReply(status=429, content="slow down", headers={"retry-after-ms": "200"}), "ok")
    start = time.perf_counter()
    ChatClient(make_backend(server)).chat("hi")
    assert server.calls == 2
    assert time.perf_counter() - start >= 0.2


@pytest.mark.parametrize("headers, wait, ignored", [
    ({"Retry-After": "-5"}, "waiting 0.00 s", False),
    ({"retry-after-ms": "-5000"}, "waiting 0.00 s", False),
    ({"Retry-After": "Wed, 21 Oct 2015 07:28:00 GMT"}, "waiting 0.00 s", False),  # a date in the past
    ({"retry-after-ms": "nan"}, "waiting 0.01 s", True),  # the first backoff wait, backoff_base
    ({"Retry-After": "NaN"}, "waiting 0.01 s", True),
    ({"Retry-After": "inf"}, "waiting 0.01 s", True),
    ({"Retry-After": "1e400"}, "waiting 0.01 s", True),  # overflows to infinity
    ({"Retry-After": "soon"}, "waiting 0.01 s", True),
    ({"retry-after-ms": "nan", "Retry-After": "0.02"}, "waiting 0.02 s", True),
    ({"Retry-After": "1e9"}, "waiting 0.05 s", False),  # capped at max_retry_after
    ({"retry-after-ms": "1e12"}, "waiting 0.05 s", False),
])
def test_invalid_retry_after_values(server, caplog, headers, wait, ignored):
    caplog.set_level(logging.WARNING)
    server.push(FakeReply(status=503, content="busy", headers=headers), "ok")
    result = ChatClient(make_backend(server, max_retry_after=0.05)).chat("hi")
    assert result.text == "ok"
    assert server.calls == 2
    assert wait in caplog.text
    assert ("Ignoring invalid" in caplog.text) == ignored


def test_timeout_is_retried(server):
    server.push(FakeReply(content="late", delay=1.5), "on time")
    result = ChatClient(make_backend(server, timeout=0.4)).chat("hi")
    assert result.text == "on time"
    assert server.calls == 2


@pytest.mark.parametrize("status", [400, 401, 403, 404, 422])
def test_client_errors_not_retried(server, status):
    server.push(FakeReply(status=status, content="rejected"))
    with pytest.raises(LLMRequestError) as info:
        ChatClient(make_backend(server)).chat("hi")
    assert server.calls == 1
    assert info.value.status == status


def test_retries_exhausted(server):
    server.responder = lambda request: server_error(502)
    with pytest.raises(LLMRequestError, match="HTTP 502"):
        ChatClient(make_backend(server, max_retries=2)).chat("hi")
    assert server.calls == 3


def test_malformed_http_body(server):
    server.push(FakeReply(raw_body='{"choices": [ broken'))
    with pytest.raises(LLMRequestError, match="not valid JSON"):
        ChatClient(make_backend(server)).chat("hi")
    assert server.calls == 1


@pytest.mark.parametrize("body, received", [
    ("[1,2]", "a JSON array ([1, 2])"),
    ('"hello"', 'a JSON string ("hello")'),
    ("42", "a JSON number (42)"),
    ("null", "a JSON null (null)"),
    ('{"choices": 5}', "choices are a JSON number (5)"),
    ('{"choices": [1]}', "choices are a JSON array ([1])"),
    ('{"choices": [{"message": "hi"}]}', '"message": "hi"'),
    ('{"choices": [{"message": {"content": 5}}]}', '"content": 5'),
])
def test_body_not_a_completion(server, body, received):
    server.push(FakeReply(raw_body=body))
    with pytest.raises(LLMRequestError, match="instead of a chat completion object") as info:
        ChatClient(make_backend(server)).chat("hi")
    assert received in str(info.value)
    assert server.calls == 1


@pytest.mark.parametrize("url", ["not a url", "localhost:8000/v1", "ftp://example.com/v1", "http:///v1", "http://"])
def test_invalid_base_url_rejected(url):
    with pytest.raises(ValueError, match="http://host:port/v1") as info:
        OpenAIBackend("m", base_url=url, api_key=KEY)
    assert repr(url) in str(info.value)


def test_invalid_base_url_from_environment(monkeypatch):
    monkeypatch.setenv("OPENAI_BASE_URL", "127.0.0.1:8000")
    with pytest.raises(ValueError, match="Invalid OPENAI_BASE_URL '127.0.0.1:8000'"):
        OpenAIBackend("m", api_key=KEY)


def test_single_attempt_messages_singular(server):
    with FakeOpenAIServer() as fake:
        closed_url = fake.base_url
    backend = OpenAIBackend("m", base_url=closed_url, api_key=KEY, max_retries=0, timeout=1.0)
    with pytest.raises(LLMRequestError) as info:
        ChatClient(backend).chat("hi")
    assert "failed after 1 attempt:" in str(info.value)
    assert "Connection error. Check" in str(info.value)
    assert ".." not in str(info.value)
    server.push(server_error(500))
    with pytest.raises(LLMRequestError) as info:
        ChatClient(make_backend(server, max_retries=0)).chat("hi")
    assert "It failed 1 time." in str(info.value)
    assert ".." not in str(info.value)


def test_connection_refused_retried_then_fails():
    with FakeOpenAIServer() as fake:
        base_url = fake.base_url
    backend = OpenAIBackend("m", base_url=base_url, api_key=KEY, backoff_base=0.01, max_retries=2, timeout=1.0)
    with pytest.raises(LLMRequestError, match="failed after 3 attempts"):
        ChatClient(backend).chat("hi")


# Structured output

def test_bad_json_then_valid(server):
    server.push("Here you go: {score: 3}", VALID)
    result = ChatClient(make_backend(server)).chat("Grade it.", schema=Grade)
    assert server.calls == 2
    assert result.parsed == Grade(score=3, reason="partly right")
    assert result.usage.validation_retries == 1
    feedback = server.requests[1]["messages"][-1]["content"]
    assert "could not be used" in feedback
    assert server.requests[1]["messages"][-2] == {"role": "assistant", "content": "Here you go: {score: 3}"}
    assert server.requests[0]["response_format"]["type"] == "json_schema"
    assert server.requests[0]["response_format"]["json_schema"]["schema"] == Grade.model_json_schema()


def test_schema_violation_error_fed_back(server):
    server.push('{"score": 9, "reason": "x"}', VALID)
    ChatClient(make_backend(server)).chat("Grade it.", schema=Grade)
    assert "score: Input should be less than or equal to 5" in server.requests[1]["messages"][-1]["content"]


def test_final_failure_carries_raw_reply(server):
    server.responder = lambda request: FakeReply(content="not json at all")
    with pytest.raises(StructuredOutputError) as info:
        ChatClient(make_backend(server), max_attempts=3).chat("Grade it.", schema=Grade)
    assert server.calls == 3
    assert info.value.raw == "not json at all"
    assert len(info.value.errors) == 3


def test_truncation_doubles_budget(server):
    server.push(FakeReply(content='{"score": 3, "rea', finish_reason="length"), VALID)
    result = ChatClient(make_backend(server)).chat("Grade it.", schema=Grade, max_tokens=50)
    assert server.calls == 2
    assert [r["max_tokens"] for r in server.requests] == [50, 100]
    assert result.parsed.score == 3


def test_truncation_at_cap_is_reported(server):
    server.push(FakeReply(content='{"score": 3, "rea', finish_reason="length"))
    with pytest.raises(TruncatedOutput, match="cut at length"):
        ChatClient(make_backend(server), max_tokens_cap=64).chat("Grade it.", schema=Grade, max_tokens=64)
    assert server.calls == 1


def test_text_reply_reports_length(server):
    server.push(FakeReply(content="a long ans", finish_reason="length"))
    result = ChatClient(make_backend(server)).chat("Tell me a story.", max_tokens=3)
    assert result.finish_reason == "length"
    assert server.calls == 1


def test_response_format_fallback(server):
    server.reject_response_format = True
    server.responder = lambda request: FakeReply(content=VALID)
    backend = make_backend(server)
    client = ChatClient(backend)
    assert client.chat("Grade it.", schema=Grade).parsed.score == 3
    assert server.calls == 3  # json_schema rejected, json_object rejected, instructions only
    assert backend.structured_mode == "prompt"
    client.chat("Grade another.", schema=Grade)
    assert server.calls == 4
    assert "json" in server.requests[-1]["messages"][0]["content"].lower()


def test_images_sent_as_png_data_urls(server):
    image = Image.new("RGB", (3000, 1000), "blue")
    ChatClient(make_backend(server)).chat([user_message("Describe.", [image])])
    part = server.requests[0]["messages"][0]["content"][1]
    assert part["type"] == "image_url"
    header, data = part["image_url"]["url"].split(",", 1)
    assert header == "data:image/png;base64"
    png = base64.b64decode(data)
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    assert max(Image.open(__import__("io").BytesIO(png)).size) == 1024


# Cache

def test_cache_hits_skip_the_server(server, tmp_path):
    server.responder = lambda request: FakeReply(content=VALID)
    cache_path = tmp_path/"llm.sqlite"
    client = ChatClient(make_backend(server), cache=LLMCache(cache_path))
    client.chat("Grade it.", schema=Grade)
    client.chat("Grade it.", schema=Grade)
    assert server.calls == 1
    rerun = ChatClient(make_backend(server), cache=LLMCache(cache_path))
    result = rerun.chat("Grade it.", schema=Grade)
    assert server.calls == 1
    assert result.cached
    assert rerun.usage.cache_hits == 1
    assert rerun.usage.calls == 0
    rerun.chat("Grade it.", schema=Grade, temperature=0.5, seed=1)
    rerun.chat("Grade it.", schema=Grade, max_tokens=77)
    rerun.chat("Grade it.")
    assert server.calls == 4


def test_cache_key_includes_model(server, tmp_path):
    cache = LLMCache(tmp_path/"llm.sqlite")
    ChatClient(make_backend(server), cache=cache).chat("hi")
    ChatClient(OpenAIBackend("other-model", base_url=server.base_url, api_key=KEY), cache=cache).chat("hi")
    assert server.calls == 2


def test_cache_replays_validation_retries(server, tmp_path):
    server.push("oops", VALID)
    cache = LLMCache(tmp_path/"llm.sqlite")
    ChatClient(make_backend(server), cache=cache).chat("Grade it.", schema=Grade)
    result = ChatClient(make_backend(server), cache=cache).chat("Grade it.", schema=Grade)
    assert server.calls == 2
    assert result.usage.cache_hits == 2
    assert result.attempts == 2


# Usage and cost

def test_usage_and_cost(server):
    server.push(FakeReply(content="x", prompt_tokens=1000, completion_tokens=500))
    client = ChatClient(make_backend(server), price_table={"fake-model": (2.0, 8.0)})
    client.chat("hi")
    assert client.usage.prompt_tokens == 1000
    assert client.usage.completion_tokens == 500
    assert client.cost() == pytest.approx((1000*2.0 + 500*8.0)/1e6)
    assert client.usage.latency_s > 0
    unpriced = ChatClient(make_backend(server))
    unpriced.chat("hi")
    with pytest.raises(ValueError, match="No price for model"):
        unpriced.cost()


# Batches

def _grade_items(n):
    return {f"student-{i}": f"Answer number {i}" for i in range(n)}


def test_batch_resume_after_interrupt(server, tmp_path):
    server.responder = lambda request: FakeReply(content=VALID)
    client = ChatClient(make_backend(server))
    journal = tmp_path/"batch.jsonl"
    seen = []

    def grade_until_interrupt(answer):
        if len(seen) == 5: raise KeyboardInterrupt
        seen.append(answer)
        return client.chat(answer, schema=Grade).parsed

    with pytest.raises(KeyboardInterrupt):
        run_batch(_grade_items(10), grade_until_interrupt, journal=journal, concurrency=1, progress=False)
    assert server.calls == 5
    assert len(journal.read_text().splitlines()) == 5
    report = run_batch(_grade_items(10), lambda a: client.chat(a, schema=Grade).parsed, journal=journal, concurrency=1, progress=False)
    assert server.calls == 10
    assert len(report.resumed) == 5
    assert len(report.results) == 10
    assert report.results["student-0"] == {"score": 3, "reason": "partly right"}


def test_batch_failures_do_not_stop_others(server):
    server.responder = lambda request: (FakeReply(status=400, content="bad item") if "number 3" in json.dumps(request)
                                        else FakeReply(content=VALID))
    client = ChatClient(make_backend(server))
    report = run_batch(_grade_items(8), lambda a: client.chat(a, schema=Grade).parsed, concurrency=4, progress=False)
    assert list(report.failures) == ["student-3"]
    assert "HTTP 400" in report.failures["student-3"]
    assert len(report.results) == 7
    assert server.calls == 8
    with pytest.raises(LLMError, match="1 batch item"):
        report.raise_for_failures()


def test_batch_rejects_duplicate_ids():
    with pytest.raises(ValueError, match="Duplicate batch ids"):
        run_batch([("a", 1), ("a", 2)], lambda x: x, progress=False)


def test_batch_survives_kill(server, tmp_path):
    "A batch process killed with SIGKILL resumes without repeating any journaled item."
    server.responder = lambda request: FakeReply(content=VALID, delay=0.15)
    journal = tmp_path/"batch.jsonl"
    script = textwrap.dedent(f"""
        from edulit.llm import ChatClient, OpenAIBackend, run_batch
        from pydantic import BaseModel
        class Grade(BaseModel):
            score: int
            reason: str
        client = ChatClient(OpenAIBackend("fake-model", base_url={server.base_url!r}, api_key="x"))
        items = {{f"student-{{i}}": f"Answer number {{i}}" for i in range(12)}}
        run_batch(items, lambda a: client.chat(a, schema=Grade).parsed, journal={str(journal)!r}, concurrency=2, progress=False)
    """)

    env = dict(os.environ, OMP_NUM_THREADS="1")
    process = subprocess.Popen([sys.executable, "-c", script], env=env)

    deadline = time.time() + 60
    while time.time() < deadline:
        if journal.exists() and len(journal.read_text().splitlines()) >= 4: break
        time.sleep(0.02)
    process.send_signal(signal.SIGKILL)
    process.wait()

    # A line cut by the kill has no closing brace; that item was not finished.
    finished = [json.loads(line)["id"] for line in journal.read_text().splitlines() if line.endswith("}")]
    assert 4 <= len(finished) < 12

    calls_before = server.calls
    client = ChatClient(make_backend(server))
    report = run_batch({f"student-{i}": f"Answer number {i}" for i in range(12)},
                       lambda a: client.chat(a, schema=Grade).parsed, journal=journal, concurrency=2, progress=False)
    assert sorted(report.resumed) == sorted(finished)
    assert server.calls - calls_before == 12 - len(finished)
    assert len(report.results) == 12


# Cassettes

def test_cassette_record_then_replay(server, tmp_path):
    server.responder = lambda request: FakeReply(content=VALID)
    cassette = tmp_path/"grades.jsonl"
    recorder = ChatClient(ReplayBackend(cassette, mode="record", backend=make_backend(server)))
    recorder.chat("Grade answer A.", schema=Grade)
    recorder.chat("Grade answer B.", schema=Grade)
    assert server.calls == 2
    replay = ChatClient(ReplayBackend(cassette))
    assert replay.chat("Grade answer B.", schema=Grade).parsed.score == 3
    assert server.calls == 2
    with pytest.raises(ReplayMissError, match="Grade answer C"):
        replay.chat("Grade answer C.", schema=Grade)


# Secrets

def test_key_never_leaks(server, tmp_path, caplog):
    caplog.set_level(logging.DEBUG)
    cache_path, cassette = tmp_path/"llm.sqlite", tmp_path/"cassette.jsonl"
    server.push(rate_limited(0.01), server_error(500), "hello", "oops", VALID)
    backend = make_backend(server)
    client = ChatClient(ReplayBackend(cassette, mode="record", backend=backend), cache=LLMCache(cache_path))
    client.chat("hi")
    client.chat("Grade it.", schema=Grade)
    messages = []
    for reply in (FakeReply(status=401, content="Incorrect API key provided"), server_error(503)):
        server.responder = lambda request, reply=reply: reply
        try:
            ChatClient(make_backend(server, max_retries=1)).chat("fails")
        except LLMRequestError as e:
            messages.append(str(e) + repr(e) + repr(e.__cause__) + repr(e.__context__))
    server.responder = lambda request: FakeReply(content=f"I saw the key {KEY} somewhere")  # a reply that echoes the key
    ChatClient(make_backend(server), cache=LLMCache(cache_path)).chat("leak test")
    try:
        ChatClient(make_backend(server)).chat("leak", schema=Grade, max_attempts=1)
    except StructuredOutputError as e:
        messages.append(str(e))
    assert len(messages) == 3
    assert server.headers[0]["authorization"] == f"Bearer {KEY}"  # the key did reach the server
    assert KEY not in caplog.text
    assert "Retrying" in caplog.text
    for message in messages: assert KEY not in message
    assert KEY not in repr(backend)
    for path in tmp_path.iterdir():
        assert KEY.encode() not in path.read_bytes(), path


SHORT_KEY = "tinykey99"


def echo_authorization(server):
    "A responder that answers 401 and echoes the Authorization header, as some proxies do."
    return lambda request: FakeReply(status=401, content=f"Invalid credentials: {server.headers[-1]['authorization']}")


def test_short_key_redacted_in_http_error(server):
    server.responder = echo_authorization(server)
    with pytest.raises(LLMRequestError) as info:
        ChatClient(make_backend(server, api_key=SHORT_KEY)).chat("hi")
    assert server.headers[0]["authorization"] == f"Bearer {SHORT_KEY}"
    assert SHORT_KEY not in str(info.value)
    assert "Bearer [redacted]" in str(info.value)


def test_short_key_redacted_in_raw_reply(server, tmp_path):
    server.responder = lambda request: FakeReply(content=f"my key is {SHORT_KEY}")
    backend = make_backend(server, api_key=SHORT_KEY)
    with pytest.raises(StructuredOutputError) as info:
        ChatClient(backend).chat("Grade it.", schema=Grade, max_attempts=1)
    assert "Raw reply: my key is [redacted]" in str(info.value)
    ChatClient(backend, cache=LLMCache(tmp_path/"llm.sqlite")).chat("leak test")
    assert SHORT_KEY.encode() not in (tmp_path/"llm.sqlite").read_bytes()


def test_short_key_from_environment_redacted(server, monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", "envkey7")
    server.responder = echo_authorization(server)
    with pytest.raises(LLMRequestError) as info:
        ChatClient(OpenAIBackend("fake-model", base_url=server.base_url)).chat("hi")
    assert server.headers[0]["authorization"] == "Bearer envkey7"
    assert "envkey7" not in str(info.value)


def test_short_key_redacted_only_as_token():
    register_secret("qz7")
    assert redact("key qz7, (qz7) 'qz7'") == "key [redacted], ([redacted]) '[redacted]'"
    assert redact("qz77 xqz7 qz7-a a_qz7") == "qz77 xqz7 qz7-a a_qz7"


def test_placeholder_key_not_redacted(server):
    OpenAIBackend("fake-model", base_url=server.base_url, api_key="EMPTY")
    register_secret("")
    register_secret("   ")
    assert redact("EMPTY value, spaces   here") == "EMPTY value, spaces   here"


def test_logprobs_returned_and_cached(server, tmp_path):
    tokens = [{"token": "4", "logprob": -0.1, "top_logprobs": [{"token": "4", "logprob": -0.1}, {"token": "5", "logprob": -2.4}]}]
    server.push(FakeReply(content="4", logprobs=tokens))
    cache = LLMCache(tmp_path/"llm.sqlite")
    first = ChatClient(make_backend(server), cache=cache).chat("Score 1-5?", logprobs=True, top_logprobs=2)
    second = ChatClient(make_backend(server), cache=cache).chat("Score 1-5?", logprobs=True, top_logprobs=2)
    assert server.requests[0]["logprobs"] is True
    assert server.requests[0]["top_logprobs"] == 2
    assert first.logprobs == tokens
    assert second.cached
    assert second.logprobs == tokens
    assert server.calls == 1


def test_cache_without_logprobs_column_upgraded(tmp_path):
    import sqlite3
    path = tmp_path/"old.sqlite"
    db = sqlite3.connect(path)
    db.execute("CREATE TABLE completions (key TEXT PRIMARY KEY, created REAL, identity TEXT, request TEXT, text TEXT, "
               "finish_reason TEXT, prompt_tokens INTEGER, completion_tokens INTEGER, model TEXT)")
    db.execute("INSERT INTO completions VALUES ('k', 0, '{}', '{}', 'old reply', 'stop', 1, 2, 'm')")
    db.commit()
    db.close()
    cache = LLMCache(path)
    assert cache.get("k").text == "old reply"
    assert cache.get("k").logprobs is None
    assert len(cache) == 1


def test_corrupt_cache_file_named(tmp_path):
    path = tmp_path/"broken.sqlite"
    path.write_bytes(b"this is not a database" * 100)
    with pytest.raises(LLMError, match="broken.sqlite"):
        LLMCache(path)


def test_cache_path_under_a_file(tmp_path):
    blocker = tmp_path/"notes.txt"
    blocker.write_text("not a directory")
    for path in (blocker/"cache.sqlite", blocker/"sub"/"cache.sqlite"):
        with pytest.raises(LLMError) as info:
            LLMCache(path)
        assert str(path) in str(info.value)
        assert f"{blocker} is a file, not a directory" in str(info.value)


def test_cache_path_is_a_directory(tmp_path):
    with pytest.raises(LLMError, match="it is a directory"):
        LLMCache(tmp_path)
