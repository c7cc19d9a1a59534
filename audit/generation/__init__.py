"""Generation: requests to OpenAI-compatible servers or the embedded llama.cpp model, and the cache of their answers.

``types`` (endpoint, request, generation, payload, response parser) ← ``model_file`` (the GGUF and its identity);
``cache`` and ``embedded`` import ``types``; ``http`` (the runner) imports all of them. Nothing here scores or
computes statistics.
"""
