"""Independent reference for Tandem's chat templates: renders a template with Python's
`jinja2` configured as Hugging Face's `apply_chat_template` does (trim_blocks, lstrip_blocks,
loop controls, its `tojson` and `raise_exception`).

usage: jinja_reference.py < {"template": "...", "cases": [{"messages": [...],
        "add_generation_prompt": bool, "bos_token": str, "eos_token": str, "extra": {...}}]}
prints a JSON list with {"output": str} or {"error": message} per case.
"""
import json
import sys

import jinja2
from jinja2.ext import loopcontrols
from jinja2.sandbox import ImmutableSandboxedEnvironment


def raise_exception(message):
    raise jinja2.exceptions.TemplateError(message)


def tojson(x, ensure_ascii=False, indent=None, separators=None, sort_keys=False):
    return json.dumps(x, ensure_ascii=ensure_ascii, indent=indent, separators=separators, sort_keys=sort_keys)


def main():
    request = json.load(sys.stdin)
    env = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True, extensions=[loopcontrols])
    env.filters["tojson"] = tojson
    env.globals["raise_exception"] = raise_exception
    template = env.from_string(request["template"])
    results = []
    for case in request["cases"]:
        try:
            output = template.render(
                messages=case["messages"], add_generation_prompt=case["add_generation_prompt"],
                bos_token=case["bos_token"], eos_token=case["eos_token"], **case.get("extra", {}))
            results.append({"output": output})
        except jinja2.exceptions.TemplateError as error:
            results.append({"error": str(error)})
    json.dump(results, sys.stdout)


main()
