"""Stage 5, experience. In: tasks, their environment, a user simulator (scripted, rule-based; or an LLM)
and an agent (the scripted teacher, or any `ChatBackend`). Out: trajectories in OpenAI chat format with
final-state hash, termination and token stats; journalled, so an interrupted collection resumes."""
