"""The official OpenAI client through a router: every answer must equal the same request sent
straight to a worker (greedy, same engine). Usage: router_openai_check.py ROUTER_V1 WORKER_V1 MODEL"""
import sys

from openai import OpenAI

router_url, worker_url, model = sys.argv[1:4]
router = OpenAI(base_url=router_url, api_key="unused", max_retries=0, timeout=120)
worker = OpenAI(base_url=worker_url, api_key="unused", max_retries=0, timeout=120)


def complete(client, prompt, stream):
    if not stream:
        return client.completions.create(model=model, prompt=prompt, max_tokens=8, temperature=0).choices[0].text
    pieces = client.completions.create(model=model, prompt=prompt, max_tokens=8, temperature=0, stream=True)
    return "".join(chunk.choices[0].text for chunk in pieces if chunk.choices)


def chat(client, text, stream):
    messages = [{"role": "user", "content": text}]
    if not stream:
        return client.chat.completions.create(model=model, messages=messages, max_tokens=8, temperature=0).choices[0].message.content
    pieces = client.chat.completions.create(model=model, messages=messages, max_tokens=8, temperature=0, stream=True)
    return "".join(chunk.choices[0].delta.content or "" for chunk in pieces if chunk.choices)


for prompt in ["The capital of France is", "Once upon a time", "def add(a, b):", "Water boils at"]:
    expected = complete(worker, prompt, False)
    for stream in (False, True):
        got = complete(router, prompt, stream)
        assert got == expected, f"completion {prompt!r} stream={stream}: {got!r} != {expected!r}"
expected = chat(worker, "Say hello.", False)
for stream in (False, True):
    got = chat(router, "Say hello.", stream)
    assert got == expected, f"chat stream={stream}: {got!r} != {expected!r}"
print("all checks passed")
