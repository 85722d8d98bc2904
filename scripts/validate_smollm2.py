"""Compares lfx's SmolLM2 (lfx.lm) with transformers loading the same GGUF file (CPU torch).

transformers and torch live in a separate environment (FACTS.md: transformers 5.x + accelerate
under the CPU torch wheel), so this script runs itself there with --side=hf, which writes the
reference logits, greedy tokens and tokenizer ids to a .npz; the lfx side then compares.

  python scripts/validate_smollm2.py --hf_python=/opt/peers/hf/bin/python

Both sides get the SAME token ids (lfx's tokenizer), so logits compare the networks alone; token
ids of the two tokenizers are compared separately (transformers' GGUF tokenizer ignores the
`smollm` pre-tokenizer and does not split digits, so digit-free texts are compared).
"""

import argparse
import json
import os
import subprocess
import tempfile
import time

import numpy as np

PROMPTS = [
    "What is the capital of France?",
    "Write a haiku about the sea.",
    "Continue the list: 3, 7, 11, 15,",
    "Propose a better solution: x = [0.52, -1.30] has fitness 12, x = [0.10, -0.85] has "
    "fitness 31.",
]
TEXTS = ["Hello world, this is a tokenizer test.", "  spaces   and\ttabs\nnewlines!",
         "Ünïcödé ☃ and emoji 🙂 text", "<|im_start|>user\nHi there<|im_end|>\n"]
NEW_TOKENS = 32


def hf_side(out_path, ids_json):
    import torch
    import transformers

    with open(ids_json) as f:
        job = json.load(f)
    folder, name = os.path.split(job["gguf"])
    t0 = time.time()
    model = transformers.AutoModelForCausalLM.from_pretrained(
        folder, gguf_file=name, dtype=torch.float32)
    tok = transformers.AutoTokenizer.from_pretrained(folder, gguf_file=name)
    load_s = time.time() - t0
    print(f"[hf] loaded in {load_s:.1f} s", flush=True)
    model.eval()
    out = {"load_s": np.array(load_s), "versions": np.array(
        f"transformers {transformers.__version__}, torch {torch.__version__}")}
    with torch.no_grad():
        for i, ids in enumerate(job["prompts"]):
            x = torch.tensor([ids])
            out[f"logits_{i}"] = model(x).logits[0].numpy()
            g = model.generate(x, max_new_tokens=NEW_TOKENS, do_sample=False,
                               eos_token_id=job["eos_id"], pad_token_id=job["eos_id"])
            out[f"greedy_{i}"] = g[0, len(ids):].numpy()
            print(f"[hf] prompt {i} done ({time.time() - t0:.0f} s)", flush=True)
    for i, text in enumerate(job["texts"]):
        out[f"tok_{i}"] = np.array(tok.encode(text, add_special_tokens=False))
    np.savez(out_path, **out)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--side", default="lfx", choices=["lfx", "hf"])
    parser.add_argument("--hf_python", default="/opt/peers/hf/bin/python")
    parser.add_argument("--job", default="")
    parser.add_argument("--out", default="")
    args = parser.parse_args()
    if args.side == "hf":
        hf_side(args.out, args.job)
        return

    import jax

    from lfx.lm import generate, left_pad, load_smollm2, smollm2_path

    params, config, tok = load_smollm2()
    prompts = [tok.encode(tok.apply_chat_template([{"role": "user", "content": p}]))
               for p in PROMPTS]
    tmp = tempfile.mkdtemp()
    job = os.path.join(tmp, "job.json")
    out = os.path.join(tmp, "hf.npz")
    with open(job, "w") as f:
        json.dump({"gguf": smollm2_path(), "prompts": prompts, "texts": TEXTS,
                   "eos_id": tok.eos_id}, f)
    subprocess.run([args.hf_python, __file__, "--side=hf", f"--job={job}", f"--out={out}"],
                   check=True)
    ref = np.load(out)
    print(f"reference: {ref['versions']} (load {float(ref['load_s']):.1f} s)")
    from lfx.lm import forward

    fwd = jax.jit(lambda p, t: forward(p, config, t)[0])
    rows = []
    for i, ids in enumerate(prompts):
        ours = np.asarray(fwd(params, np.array([ids], np.int32)))[0]
        theirs = ref[f"logits_{i}"]
        diff = np.abs(ours - theirs).max()
        top_agree = np.mean(ours.argmax(-1) == theirs.argmax(-1))
        pid, plen = left_pad([ids], tok.pad_id)
        g, n = generate(params, config, pid, plen, key=jax.random.key(0),
                        max_new_tokens=NEW_TOKENS)
        ours_g = list(np.asarray(g[0, :int(n[0])]))
        theirs_g = [int(t) for t in ref[f"greedy_{i}"] if int(t) != tok.eos_id]
        match = ours_g == theirs_g[:NEW_TOKENS]
        rows.append((i, len(ids), diff, np.abs(theirs).max(), top_agree, match))
        print(f"prompt {i} ({len(ids)} tokens): max |dlogit| {diff:.2e} (max |logit| "
              f"{np.abs(theirs).max():.1f}), argmax agreement {top_agree:.3f}, greedy "
              f"{NEW_TOKENS}-token match {match}")
        print(f"  lfx: {tok.decode(ours_g)!r}")
        if not match:
            print(f"  hf : {tok.decode(theirs_g)!r}")
    for i, text in enumerate(TEXTS):
        same = tok.encode(text) == [int(t) for t in ref[f"tok_{i}"]]
        print(f"tokenizer ids equal on {text!r}: {same}")


if __name__ == "__main__":
    main()
