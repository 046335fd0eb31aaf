"""Prints a GGUF file's tokenizer metadata (tokenizer.ggml.*, tokenizer.chat_template) as JSON,
read with the `gguf` package, for tests that check Tandem's own GGUF reading against it.

usage: vocab_dump.py MODEL.gguf
"""
import json
import sys

from gguf import GGUFReader, GGUFValueType


def main():
    reader = GGUFReader(sys.argv[1])
    result = {}
    for key, field in reader.fields.items():
        if not key.startswith("tokenizer."):
            continue
        values = []
        for i in field.data:
            part = field.parts[i]
            if field.types[-1] == GGUFValueType.STRING:
                values.append(bytes(part).decode("utf-8"))
            else:
                values.append(part.tolist()[0])
        is_array = field.types[0] == GGUFValueType.ARRAY
        result[key] = values if is_array else values[0]
    json.dump(result, sys.stdout)


main()
