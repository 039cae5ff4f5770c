#!/usr/bin/env python3
"""Reference vectors for the EmbeddingGemma parity test, from an independent fp32 numpy forward pass.

usage: python3 models/gemma_reference.py REFERENCE_DIR MODEL_DOWNLOAD_DIR > tests/data/gemma_reference.json

REFERENCE_DIR holds egemma_numpy.py (shared/reference/embeddinggemma, a validated numpy implementation that
reproduces the model card to 3e-4); MODEL_DOWNLOAD_DIR is the unpacked sentence-transformers folder. Needs
numpy, safetensors and tokenizers. Each text is embedded alone, with its prompt (query or document).
"""
import json, sys

sys.path.insert(0, sys.argv[1])
from egemma_numpy import EmbeddingGemma  # noqa: E402

QUERIES = [
    "Which planet is known as the Red Planet?",
    "Why do better chatbots make video generators look better?",
    "¿Cuánto cuesta almacenar los datos para entrenar un modelo de vídeo?",
]
DOCUMENTS = [
    "Venus is often called Earth's twin because of its similar size and proximity.",
    "Mars, known for its reddish appearance, is often referred to as the Red Planet.",
    "Jupiter, the largest planet in our solar system, has a prominent red spot.",
    "Saturn, famous for its rings, is sometimes mistaken for the Red Planet.",
    "The Cost of Training Large Video Models. Training large video models costs roughly as much as training a "
    "medium-scale language model, but storage and data movement dominate.",
    "El linaje ESM: de ESM2 a ESMC. ESM2 mostró mejoras con el escalado pero alcanzó rendimientos decrecientes "
    "en 10B parámetros — no porque el modelo estuviera saturado, sino porque los datos lo estaban.",
]
m = EmbeddingGemma(sys.argv[2])
r = lambda vs: [[round(float(x), 7) for x in v] for v in vs]
print(json.dumps({
    "source": "egemma_numpy.py (fp32 numpy reference), one text per call",
    "queries": QUERIES, "query_vectors": r([m.encode_query([q])[0] for q in QUERIES]),
    "documents": DOCUMENTS, "document_vectors": r([m.encode_document([d])[0] for d in DOCUMENTS]),
}, ensure_ascii=False))
