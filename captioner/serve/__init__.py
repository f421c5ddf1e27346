"""`captioner serve`: the attention explorer page and a batched JSON API (FastAPI + uvicorn; the `serve` extra).

`create_app(Engine(captioner, answerer), ServeSettings())` builds the app for loaded models; `captioner serve` runs it.
"""
