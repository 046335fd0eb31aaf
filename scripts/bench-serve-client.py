#!/usr/bin/env python3
"""A second, independent load generator for OpenAI-compatible servers (asyncio + aiohttp,
numpy percentiles), to check that `tandem bench serve` measures fairly: it shares no code
with it. Each request's prompt is a list of random token ids (ordinary tokens of the GGUF
file's vocabulary, read with the `gguf` package) sent to /v1/completions, streamed with
`stream_options.include_usage`; output token counts come from the server's usage. Prints
one JSON object with the same key names as `tandem bench serve --json`.

  scripts/bench-serve-client.py --base-url http://127.0.0.1:8080 --gguf MODEL.gguf \
      --num-prompts 32 --max-concurrency 8 --input-len 256 --output-len 128
"""
import argparse, asyncio, json, random, sys, time

import aiohttp
import numpy as np
from gguf import GGUFReader

NORMAL_TOKEN = 1  # tokenizer.ggml.token_type: 1 normal, 2 unknown, 3 control, 4 user-defined, 5 unused, 6 byte


def ordinary_token_ids(path):
    reader = GGUFReader(path)
    field = reader.fields["tokenizer.ggml.token_type"]
    types = [int(field.parts[i][0]) for i in field.data]
    return [i for i, t in enumerate(types) if t == NORMAL_TOKEN]


async def one_request(session, url, model, prompt, output_len, semaphore):
    body = {"model": model, "prompt": prompt, "max_tokens": output_len, "temperature": 0,
            "ignore_eos": True, "stream": True, "stream_options": {"include_usage": True}}
    async with semaphore:
        start = time.perf_counter()
        ttft, last, itl, usage, error = None, None, [], None, None
        try:
            async with session.post(url, json=body) as response:
                if response.status != 200:
                    error = f"HTTP {response.status}: {(await response.text())[:300]}"
                else:
                    buffer = b""
                    async for chunk in response.content.iter_any():
                        now = time.perf_counter() - start
                        buffer += chunk
                        *events, buffer = buffer.replace(b"\r\n", b"\n").split(b"\n\n")
                        for event in events:
                            for line in event.split(b"\n"):
                                if not line.startswith(b"data:"):
                                    continue
                                payload = line[5:].strip()
                                if payload == b"[DONE]":
                                    continue
                                data = json.loads(payload)
                                if data.get("usage"):
                                    usage = data["usage"]
                                choices = data.get("choices") or []
                                if choices and choices[0].get("text"):
                                    if ttft is None:
                                        ttft = now
                                    else:
                                        itl.append(now - last)
                                    last = now
        except Exception as exc:  # a failed request is counted, not fatal
            error = repr(exc)
        latency = time.perf_counter() - start
        if error is None and (ttft is None or usage is None):
            error = "no generated text or no usage in the stream"
        return {"error": error, "ttft": ttft, "itl": itl, "latency": latency,
                "prompt_tokens": (usage or {}).get("prompt_tokens", 0),
                "completion_tokens": (usage or {}).get("completion_tokens", 0)}


async def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--base-url", required=True)
    p.add_argument("--gguf", required=True, help="GGUF file whose vocabulary the random prompts are drawn from")
    p.add_argument("--model", help="model name to send (default: the first of GET /v1/models)")
    p.add_argument("--num-prompts", type=int, default=32)
    p.add_argument("--max-concurrency", type=int, default=8)
    p.add_argument("--input-len", type=int, default=256)
    p.add_argument("--output-len", type=int, default=128)
    p.add_argument("--seed", type=int, default=0)
    a = p.parse_args()

    vocabulary = ordinary_token_ids(a.gguf)
    rng = random.Random(a.seed)
    prompts = [[rng.choice(vocabulary) for _ in range(a.input_len)] for _ in range(a.num_prompts)]
    connector = aiohttp.TCPConnector(limit=a.max_concurrency)
    timeout = aiohttp.ClientTimeout(total=600)
    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:
        model = a.model
        if model is None:
            async with session.get(a.base_url + "/v1/models") as r:
                model = (await r.json())["data"][0]["id"]
        url = a.base_url + "/v1/completions"
        semaphore = asyncio.Semaphore(a.max_concurrency)
        # One untimed request first, as both benchmark clients do.
        await one_request(session, url, model, prompts[0], a.output_len, semaphore)
        start = time.perf_counter()
        results = await asyncio.gather(*(one_request(session, url, model, prompt, a.output_len, semaphore)
                                         for prompt in prompts))
        duration = time.perf_counter() - start

    ok = [r for r in results if r["error"] is None]
    def stats(name, values):
        v = np.array(values if values else [0.0]) * 1000
        return {f"mean_{name}_ms": float(v.mean()), f"median_{name}_ms": float(np.median(v)),
                f"p90_{name}_ms": float(np.percentile(v, 90)), f"p99_{name}_ms": float(np.percentile(v, 99))}
    out_tokens = sum(r["completion_tokens"] for r in ok)
    in_tokens = sum(r["prompt_tokens"] for r in ok)
    report = {"client": "scripts/bench-serve-client.py (aiohttp " + aiohttp.__version__ + ")",
              "completed": len(ok), "failed": len(results) - len(ok), "duration": duration,
              "total_input_tokens": in_tokens, "total_output_tokens": out_tokens,
              "request_throughput": len(ok) / duration, "output_throughput": out_tokens / duration,
              "total_token_throughput": (in_tokens + out_tokens) / duration,
              **stats("ttft", [r["ttft"] for r in ok]),
              **stats("tpot", [(r["latency"] - r["ttft"]) / (r["completion_tokens"] - 1)
                               for r in ok if r["completion_tokens"] > 1]),
              **stats("itl", [x for r in ok for x in r["itl"]]),
              **stats("e2el", [r["latency"] for r in ok]),
              "errors": [r["error"] for r in results if r["error"]][:5]}
    print(json.dumps(report))


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
