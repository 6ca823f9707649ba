"""VLM grounding through edulit.llm and the real openai client against a fake OpenAI server on 127.0.0.1."""
import json
import re

import pytest
from PIL import Image

from edulit.jedi.evaluate import VLMGrounder, evaluate, fixture_samples, predict_all
from edulit.jedi.formats import target_center
from edulit.llm import ChatClient, OpenAIBackend
from edulit.llm_testing import FakeOpenAIServer, FakeReply

FIXTURE = fixture_samples()
CENTRES = {s.instruction: target_center(s.target) for s in FIXTURE if not s.is_refusal}


def jedi_like_responder(request: dict) -> FakeReply:
    "Reply like Jedi: a tool call in pixels of the resized image, or the `none` action when the prompt allows absence."
    system, user = request["messages"][0]["content"], request["messages"][1]["content"]
    width, height = map(int, re.search(r"(\d+)x(\d+) pixels", system).groups())
    instruction = user[1]["text"]
    if instruction not in CENTRES:
        if "not on the screen" in system: return FakeReply('<tool_call>{"name": "computer_use", "arguments": {"action": "none"}}</tool_call>')
        # Without an absent answer in the prompt, the model clicks somewhere, as grounders trained only on clicks do.
        return FakeReply('<tool_call>{"name": "computer_use", "arguments": {"action": "left_click", "coordinate": [1, 1]}}</tool_call>')
    centre = CENTRES[instruction]
    arguments = {"action": "left_click", "coordinate": [round(centre.x*width/200), round(centre.y*height/100)]}
    return FakeReply("<think>scan the screen</think>\n<tool_call>" + json.dumps({"name": "computer_use", "arguments": arguments}) + "</tool_call>")


@pytest.fixture
def server():
    with FakeOpenAIServer(responder=jedi_like_responder, model="jedi-7b") as fake:
        yield fake


def _client(server):
    return ChatClient(OpenAIBackend(model="jedi-7b", base_url=server.base_url, api_key="test-key", max_retries=0))


def test_vlm_explicit_refusal_scores_all(server):
    grounder = VLMGrounder(_client(server))
    report = evaluate(FIXTURE, predict_all(grounder, FIXTURE, {"f.png": Image.new("RGB", (200, 100))}))
    assert report["micro"] == 1.0
    assert server.calls == len(FIXTURE)
    sent = server.requests[0]["messages"][1]["content"][0]["image_url"]["url"]
    assert sent.startswith("data:image/png;base64,")


def test_vlm_implicit_mode_misses_refusals(server):
    grounder = VLMGrounder(_client(server), refusal="implicit")
    report = evaluate(FIXTURE, predict_all(grounder, FIXTURE, {"f.png": Image.new("RGB", (200, 100))}))
    assert report["refusal_accuracy"] == 0.0
    assert report["outcomes"]["missed_refusal"] == 2
    assert report["positive_accuracy"] == 1.0


def test_vlm_prompt_states_resized_size(server):
    grounder = VLMGrounder(_client(server))
    grounder(Image.new("RGB", (1920, 1080)), FIXTURE[0].instruction)
    assert "1932x1092 pixels" in server.requests[0]["messages"][0]["content"]
