"""The in-process SmolLM2 backend: capability checks, token budgets and one schema-checked request offline."""
import os
import time
from typing import Annotated

import pytest
from PIL import Image
from pydantic import BaseModel, Field, field_validator

from edulit.llm import CapabilityError, ChatClient, user_message
from edulit.llm_local import LocalBackend, schema_char_budget, smollm2_gguf_path

os.environ.setdefault("HF_HUB_OFFLINE", "1")


class Concept(BaseModel):
    name: str = Field(max_length=30)
    related: list[Annotated[str, Field(max_length=20)]] = Field(min_length=1, max_length=3)

    @field_validator("related")
    @classmethod
    def unique(cls, value):  # xgrammar 0.2.9 accepts duplicates despite uniqueItems, so pydantic checks them
        if len(set(value)) != len(value): raise ValueError("related concepts must be distinct")
        return value


def test_images_rejected_before_loading():
    backend = LocalBackend()
    with pytest.raises(CapabilityError, match="text-only model"):
        ChatClient(backend).chat([user_message("What is this?", [Image.new("RGB", (4, 4))])])


def test_budget_bounds_capped_schema():
    chars, missing = schema_char_budget(Concept.model_json_schema())
    assert missing is None
    longest = Concept(name="x"*30, related=[c*20 for c in "abc"]).model_dump_json()
    assert chars >= len(longest)


def test_budget_names_uncapped_field():
    class Loose(BaseModel):
        title: str = Field(max_length=10)
        body: str
    assert schema_char_budget(Loose.model_json_schema()) == (None, "body")


def test_missing_model_file_message(tmp_path):
    with pytest.raises(FileNotFoundError, match="not found"):
        LocalBackend(tmp_path/"absent.gguf")
    assert smollm2_gguf_path().name.endswith(".gguf")


@pytest.mark.slow
def test_local_schema_request_offline():
    client = ChatClient(LocalBackend(max_time_s=90), max_attempts=3)
    start = time.perf_counter()
    result = client.chat("Name one concept from fractions and up to three related concepts.", schema=Concept)
    assert isinstance(result.parsed, Concept)
    assert result.finish_reason == "stop"
    assert result.usage.calls <= 3
    assert time.perf_counter() - start < 300


@pytest.mark.slow
def test_local_time_limit_is_truncation():
    from edulit.llm import TruncatedOutput
    client = ChatClient(LocalBackend(max_time_s=0.05), max_attempts=3)
    with pytest.raises(TruncatedOutput, match="time_limit"):
        client.chat("Name one concept from fractions and up to three related concepts.", schema=Concept)
    assert client.usage.calls == 1


@pytest.mark.slow
def test_local_seeded_sampling_repeats():
    client = ChatClient(LocalBackend())
    prompt = "Name a fraction."
    first = client.chat(prompt, temperature=0.9, seed=7, max_tokens=12).text
    second = client.chat(prompt, temperature=0.9, seed=7, max_tokens=12).text
    greedy = client.chat(prompt, max_tokens=12).text
    assert first == second
    assert client.chat(prompt, max_tokens=12).text == greedy
