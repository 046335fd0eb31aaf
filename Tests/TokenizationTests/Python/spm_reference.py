"""Independent reference for Tandem's SentencePiece (`llama`) tokenizer.

Trains a small BPE SentencePiece model with byte fallback on the corpus given as stdin's
"corpus" (JSON), then prints its vocabulary (pieces, scores, GGUF token types) and the ids
SentencePiece itself gives each of stdin's "strings".

usage: spm_reference.py WORKDIR < {"corpus": [...], "strings": [...], "vocab_size": N}
"""
import json
import os
import sys

import sentencepiece as spm


def main():
    workdir = sys.argv[1]
    request = json.load(sys.stdin)
    prefix = os.path.join(workdir, "tiny")
    spm.SentencePieceTrainer.train(
        sentence_iterator=iter(request["corpus"]), model_prefix=prefix,
        vocab_size=request["vocab_size"], model_type="bpe", byte_fallback=True,
        normalization_rule_name="identity", remove_extra_whitespaces=False,
        add_dummy_prefix=True, character_coverage=1.0, split_digits=False,
        bos_id=1, eos_id=2, unk_id=0, pad_id=-1, minloglevel=2)
    sp = spm.SentencePieceProcessor(model_file=prefix + ".model")
    pieces, scores, types = [], [], []
    for i in range(sp.get_piece_size()):
        pieces.append(sp.id_to_piece(i))
        scores.append(sp.get_score(i))
        if sp.is_unknown(i):
            types.append(2)
        elif sp.is_control(i):
            types.append(3)
        elif sp.is_byte(i):
            types.append(6)
        elif sp.is_unused(i):
            types.append(5)
        else:
            types.append(1)
    json.dump({
        "pieces": pieces, "scores": scores, "types": types,
        "ids": [sp.encode(s) for s in request["strings"]],
        "decoded": [sp.decode(sp.encode(s)) for s in request["strings"]],
    }, sys.stdout)


main()
