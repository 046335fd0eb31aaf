"""Independent reference for Tandem's byte-level BPE tokenizer.

Reads a GGUF file's vocabulary and merges with the `gguf` package, builds a Hugging Face
`tokenizers` BPE tokenizer from them with the pre-tokenizer named on the command line, and
prints the ids of each string read from stdin (a JSON list) as a JSON list of lists.

usage: bpe_reference.py MODEL.gguf PRE < strings.json
  PRE: smollm | gpt2 | llama3 | qwen2
"""
import json
import sys

from gguf import GGUFReader
from tokenizers import AddedToken, Regex, Tokenizer, decoders, models, pre_tokenizers

LLAMA3 = (r"(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}"
          r"| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+")
QWEN2 = LLAMA3.replace(r"\p{N}{1,3}", r"\p{N}")


def field_strings(reader, key):
    field = reader.fields[key]
    return [bytes(field.parts[i]).decode("utf-8") for i in field.data]


def field_ints(reader, key):
    field = reader.fields[key]
    return [int(field.parts[i][0]) for i in field.data]


def main():
    path, pre = sys.argv[1], sys.argv[2]
    reader = GGUFReader(path)
    tokens = field_strings(reader, "tokenizer.ggml.tokens")
    types = field_ints(reader, "tokenizer.ggml.token_type")
    merges = [tuple(m.split(" ", 1)) for m in field_strings(reader, "tokenizer.ggml.merges")]
    vocab = {}
    for i, t in enumerate(tokens):
        vocab.setdefault(t, i)
    tokenizer = Tokenizer(models.BPE(vocab=vocab, merges=merges, ignore_merges=(pre == "llama3")))
    byte_level = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)
    no_regex = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False)
    if pre == "smollm":
        tokenizer.pre_tokenizer = pre_tokenizers.Sequence(
            [pre_tokenizers.Digits(individual_digits=True), byte_level])
    elif pre == "gpt2":
        tokenizer.pre_tokenizer = byte_level
    elif pre in ("llama3", "qwen2"):
        pattern = LLAMA3 if pre == "llama3" else QWEN2
        tokenizer.pre_tokenizer = pre_tokenizers.Sequence(
            [pre_tokenizers.Split(Regex(pattern), behavior="isolated"), no_regex])
    else:
        sys.exit(f"unknown pre-tokenizer {pre}")
    tokenizer.decoder = decoders.ByteLevel()
    specials = [AddedToken(t, special=True, normalized=False) for t, ty in zip(tokens, types) if ty in (3, 4)]
    tokenizer.add_special_tokens(specials)
    strings = json.load(sys.stdin)
    json.dump([tokenizer.encode(s, add_special_tokens=False).ids for s in strings], sys.stdout)


main()
