"""Stage 2, relate. In: `ToolSpec`s. Out: the tool graph (nodes; `similar` edges from parameter vectors,
`feeds` edges from returned keys to required inputs; optionally verified by a model) and its seeded Louvain
communities, the candidate domains (stable slugs, vertical flag)."""
