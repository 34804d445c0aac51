"""Stage 4, task. In: an environment and the tool graph's edges. Out: verifiable tasks (random-walk tool
chains executed for gold calls and a gold final-state hash, a templated or model-reworded user intent, a
train / held-out split)."""
