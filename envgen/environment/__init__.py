"""Stage 3, materialise. In: a domain's `ToolSpec`s. Out: an environment document (tables, one program per
tool in a typed operation language, seed recipe) and a seeded SQLite snapshot, with every kept tool proven
to run; at scale, every domain built and admitted in a process pool. Also the runtime that executes the
programs in an episode, and the argument sampler later stages share."""
