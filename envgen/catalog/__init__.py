"""Stage 1, collect. In: API spec files (bundled catalog, OpenAI tool lists, JSON-Schema functions, OpenAPI 3,
ToolBench, BFCL/xLAM) or a generated synthetic catalog. Out: `ToolSpec` rows (Parquet) and the refused specs
with their reasons. Also the catalog's naming rules (`is_key`, `key_prefix`) every later stage relies on."""
