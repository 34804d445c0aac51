"""The language-model interface every stage uses (at the bottom, beside `catalog`): `ChatBackend` and its
kinds (OpenAI-compatible endpoint, in-process Hugging Face checkpoint, do-nothing agent), the parser of
tool calls written as text, and an OpenAI-compatible HTTP server for our own checkpoints."""
