"""Drives a running api-server with the official OpenAI Python client (PyPI `openai`).

Usage: openai_client_check.py BASE_URL MODEL
Runs every check, prints one line per check, and exits non-zero on the first failure.
"""
import sys

import openai

base_url, model = sys.argv[1], sys.argv[2]
client = openai.OpenAI(base_url=base_url, api_key="unused", max_retries=0, timeout=120)
PROMPT = "The capital of France is"


def check(name, condition, detail=""):
    if not condition:
        print(f"FAIL {name}: {detail}", flush=True)
        sys.exit(1)
    print(f"ok {name}", flush=True)


# Completions, not streamed.
completion = client.completions.create(model=model, prompt=PROMPT, max_tokens=12, temperature=0)
text = completion.choices[0].text
check("completions", len(text) > 0 and completion.choices[0].finish_reason == "length", completion)
check("completions usage", completion.usage.completion_tokens == 12 and completion.usage.prompt_tokens > 0, completion.usage)

# Streaming gives the same text, and the usage chunk when asked.
pieces, usage, reasons = [], None, []
for chunk in client.completions.create(model=model, prompt=PROMPT, max_tokens=12, temperature=0, stream=True,
                                       stream_options={"include_usage": True}):
    if chunk.usage is not None:
        usage = chunk.usage
    for choice in chunk.choices:
        pieces.append(choice.text)
        if choice.finish_reason:
            reasons.append(choice.finish_reason)
check("completions stream", "".join(pieces) == text, ("".join(pieces), text))
check("completions stream usage", usage is not None and usage.completion_tokens == 12 and reasons == ["length"], usage)

# Chat, streamed and not.
messages = [{"role": "user", "content": "What is the capital of France?"}]
chat = client.chat.completions.create(model=model, messages=messages, max_tokens=16, temperature=0)
answer = chat.choices[0].message.content
check("chat", chat.choices[0].message.role == "assistant" and len(answer) > 0, chat)
streamed = ""
for chunk in client.chat.completions.create(model=model, messages=messages, max_tokens=16, temperature=0, stream=True):
    for choice in chunk.choices:
        streamed += choice.delta.content or ""
check("chat stream", streamed == answer, (streamed, answer))

# Logprobs in both shapes.
scored = client.completions.create(model=model, prompt=PROMPT, max_tokens=5, temperature=0, logprobs=2)
lp = scored.choices[0].logprobs
check("completions logprobs", len(lp.tokens) == 5 and len(lp.token_logprobs) == 5
      and all(len(top) >= 2 for top in lp.top_logprobs) and "".join(lp.tokens) == scored.choices[0].text, lp)
chat_lp = client.chat.completions.create(model=model, messages=messages, max_tokens=4, temperature=0, logprobs=True,
                                         top_logprobs=3)
entries = chat_lp.choices[0].logprobs.content
check("chat logprobs", len(entries) == chat_lp.usage.completion_tokens
      and all(len(e.top_logprobs) == 3 and e.logprob <= 0 for e in entries), entries)
# Greedy: the chosen token is the most likely one.
check("chat logprobs greedy", all(e.top_logprobs[0].logprob == max(t.logprob for t in e.top_logprobs) for e in entries))

# Echo with logprobs and no new tokens (lm-evaluation-harness's loglikelihood request).
echo = client.completions.create(model=model, prompt=PROMPT + " Paris", max_tokens=0, echo=True, logprobs=1,
                                 temperature=0)
elp = echo.choices[0].logprobs
check("echo", echo.choices[0].text == PROMPT + " Paris", echo.choices[0].text)
check("echo logprobs", elp.token_logprobs[0] is None and all(v is not None for v in elp.token_logprobs[1:])
      and len(elp.tokens) == echo.usage.prompt_tokens, elp)

# Stop strings.
stop = text.strip().split(" ")[0][:3] if text.strip() else "x"
stopped = client.completions.create(model=model, prompt=PROMPT, max_tokens=12, temperature=0, stop=[stop])
check("stop", stop not in stopped.choices[0].text and stopped.choices[0].finish_reason == "stop"
      and text.startswith(stopped.choices[0].text), (stop, stopped.choices[0].text, text))

# n choices (greedy: all equal).
many = client.completions.create(model=model, prompt=PROMPT, max_tokens=6, temperature=0, n=3)
check("n", [c.index for c in many.choices] == [0, 1, 2] and len({c.text for c in many.choices}) == 1
      and many.usage.completion_tokens == 18, many)

# Errors arrive as the client's exception types, with the server's message.
try:
    client.completions.create(model="no-such-model", prompt=PROMPT, max_tokens=2)
    check("unknown model", False, "no error")
except openai.NotFoundError as error:
    check("unknown model", error.status_code == 404 and "does not exist" in str(error), error)
try:
    client.completions.create(model=model, prompt=PROMPT, max_tokens=2, top_p=2)
    check("bad parameter", False, "no error")
except openai.BadRequestError as error:
    check("bad parameter", error.status_code == 400 and error.body.get("param") == "top_p", error.body)

# Still serving.
models = client.models.list()
check("models", [m.id for m in models.data] == [model], models)
print("all checks passed")
