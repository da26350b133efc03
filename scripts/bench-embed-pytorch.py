"""The PyTorch baseline for `krake-bench rag`'s ingestion figures: the same synthetic texts
(the same xorshift generator and word list, after the store part of the bench has drawn its
numbers... so texts differ in words but not in shape: 45-word sentences, 250-word chunks),
embedded with sentence-transformers on the CPU, batch 32, max_seq_length 256.

Run in a throwaway venv with `pip install sentence-transformers`:

    python scripts/bench-embed-pytorch.py krake-data/models/all-MiniLM-L6-v2 [sentences] [chunks]
"""
import os
import sys
import time

import torch
from sentence_transformers import SentenceTransformer

WORDS = """order hoodie refund shipping return size print partner invoice customer delay stock
warehouse label campaign discount review payment tracking parcel colour fabric cotton poster mug
sticker design artwork proof approval budget schedule newsletter audience conversion checkout cart
abandoned coupon wholesale supplier quality complaint exchange damaged lost customs duty express
standard""".split()

state = 0x9E3779B97F4A7C15
MASK = (1 << 64) - 1


def rnd():
    global state
    state ^= (state << 13) & MASK
    state ^= state >> 7
    state ^= (state << 17) & MASK
    return state


def sentence(n):
    return " ".join(WORDS[rnd() % len(WORDS)] for _ in range(n))


model = SentenceTransformer(sys.argv[1], device="cpu")
model.max_seq_length = 256
n_sent = int(sys.argv[2]) if len(sys.argv) > 2 else 256
n_chunks = int(sys.argv[3]) if len(sys.argv) > 3 else 64
print(f"PyTorch {torch.__version__}, {torch.get_num_threads()} threads, batch 32")
for count, words, label in [(n_sent, 45, "sentences"), (n_chunks, 250, "256-token chunks")]:
    texts = [sentence(words) for _ in range(count)]
    tokens = sum(len(model.tokenizer(t, truncation=True, max_length=256)["input_ids"]) for t in texts)
    model.encode(texts[:8], batch_size=32)
    t = time.perf_counter()
    model.encode(texts, batch_size=32, normalize_embeddings=True)
    took = time.perf_counter() - t
    print(f"  {count} {label} (mean {tokens / count:.0f} word pieces): {count / took:.1f} per second")
