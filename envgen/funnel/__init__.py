"""Stage 6, filter. In: trajectories and their tasks. Out: per-trajectory verdicts (validity -> final-state
alignment -> write-call match), chat-format SFT rows split by task, and the benchmark-overlap report whose
flagged tools an SFT set may exclude."""
