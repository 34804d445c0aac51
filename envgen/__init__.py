"""The method as libraries, one subpackage per stage, in pipeline order (imports only point down it):

1. `catalog`     API specs in many formats -> one `ToolSpec` catalog
2. `graph`       ToolSpecs -> tool graph (`similar` and `feeds` edges) -> Louvain domains
3. `environment` a domain's tools -> tables, tool programs, seeded SQLite snapshot (admitted when they run)
4. `tasks`       an environment -> verifiable tasks (gold calls, gold final-state hash, user intent)
5. `simulate`    tasks -> user-agent trajectories (scripted or LLM user, any agent backend)
6. `funnel`      trajectories -> verdicts -> chat-format SFT rows (and benchmark-overlap exclusions)

`llm` (the language-model interface every stage may use) sits at the bottom with `catalog`.
"""
