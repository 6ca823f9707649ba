"""Benchmark the LLM layer against the fake OpenAI-compatible server on 127.0.0.1.

Prints two ratios, each against a baseline measured in the same run:
- cache-hit rerun speed-up: N structured requests sent to the server (20 ms latency) and
  written to a fresh sqlite cache, then the same N requests read from the cache (goal >= 50x);
- batch throughput: N requests with 200 ms server latency, sequential (concurrency 1) against
  `run_batch` with concurrency 8 (goal >= 6x).

Run: python benchmarks/llm_cache_concurrency.py [--requests 40]
"""
import argparse
import tempfile
import time
from pathlib import Path

from pydantic import BaseModel, Field

from edulit.llm import ChatClient, LLMCache, OpenAIBackend, run_batch
from edulit.llm_testing import FakeOpenAIServer, FakeReply


class Grade(BaseModel):
    score: int = Field(ge=0, le=5)
    reason: str = Field(max_length=100)


def timed_batch(client, prompts, concurrency):
    start = time.perf_counter()
    report = run_batch({f"item-{i}": p for i, p in enumerate(prompts)}, lambda p: client.chat(p, schema=Grade).parsed,
                       concurrency=concurrency, progress=False)
    report.raise_for_failures()
    return time.perf_counter() - start


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=40, help="number of requests in each measurement (default 40)")
    args = parser.parse_args()
    prompts = [f"Grade answer {i}: plants make sugar from light." for i in range(args.requests)]

    with tempfile.TemporaryDirectory() as tmp, FakeOpenAIServer() as server:
        server.responder = lambda request: FakeReply(content='{"score": 3, "reason": "partly right"}', delay=0.02)
        backend = OpenAIBackend("fake-model", base_url=server.base_url, api_key="benchmark")
        cold_client = ChatClient(backend, cache=LLMCache(Path(tmp)/"cache.sqlite"))
        cold = timed_batch(cold_client, prompts, concurrency=1)
        warm_client = ChatClient(backend, cache=LLMCache(Path(tmp)/"cache.sqlite"))
        warm = timed_batch(warm_client, prompts, concurrency=1)
        assert warm_client.usage.calls == 0, "the rerun reached the server"
        assert warm_client.usage.cache_hits == args.requests, "the rerun missed the cache"
        print(f"cache: {args.requests} requests, server latency 20 ms")
        print(f"  cold (server calls): {cold:.3f} s   rerun (cache hits): {warm:.3f} s   speed-up: {cold/warm:.0f}x (goal >= 50x)")

        server.responder = lambda request: FakeReply(content='{"score": 3, "reason": "partly right"}', delay=0.2)
        client = ChatClient(backend)
        sequential = timed_batch(client, prompts, concurrency=1)
        concurrent = timed_batch(client, prompts, concurrency=8)
        print(f"batch: {args.requests} requests, server latency 200 ms")
        print(f"  sequential: {sequential:.2f} s   8-way: {concurrent:.2f} s   throughput ratio: {sequential/concurrent:.1f}x (goal >= 6x)")


if __name__ == "__main__":
    main()
