"""OpenAPI 3 documents to ToolSpecs, one tool per operation, plus the naming and scalar helpers that the
ToolBench and BFCL importers share (one `snake_case` for every format is what lets the same tool arriving
in two formats get the same name and so de-duplicate).

Later stages work with flat scalar inputs and flat returned records, so an operation is flattened to its
path/query/header parameters plus the top-level fields of its JSON request body; whatever cannot be
flattened is refused for that operation alone, never for the whole document.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from envgen.catalog.json_schema import parameter
from envgen.catalog.spec import SCALAR_TYPES, SpecError, ToolSpec, validate_spec

FORMAT = "openapi-3"
METHODS = ("get", "post", "put", "patch", "delete")
# (specs, [(name, reason)]): importers do not know `Refusal`, so they stay free of the loader they serve.
Outcome = tuple[list[ToolSpec], list[tuple[str, str]]]
EMPTY_RETURNS: dict[str, Any] = {"type": "object", "properties": {}}
_AUTH_HEADER = re.compile(r"^(authorization|proxy-authorization|cookie)$|api[-_]?key|token|rapidapi", re.I)
# Transport headers (tracing, idempotency) say nothing about the data; `X-Request-ID` would even pass
# for a key of a `x_request` entity.
_TRANSPORT_HEADER = re.compile(r"request[-_]?id|correlation|trace|idempotency|user-agent|accept", re.I)
_JSON_MEDIA = re.compile(r"^application/([\w.+-]+\+)?json\b", re.I)


def snake_case(text: str) -> str:
    """`getPetByID`, `list-pets`, `math.factorial`, `Weather API` -> get_pet_by_id, list_pets, ..."""
    s = re.sub(r"([a-z0-9])([A-Z])", r"\1_\2", str(text))
    s = re.sub(r"([A-Z]+)([A-Z][a-z])", r"\1_\2", s)
    return re.sub(r"[^A-Za-z0-9]+", "_", s).strip("_").lower()


def json_type(schema: Any) -> str | None:
    """The one type a schema declares; 3.1's `["string", "null"]` (like 3.0's `nullable`) is a string."""
    if not isinstance(schema, dict):
        return None
    t = schema.get("type")
    if isinstance(t, list):
        rest = [x for x in t if x != "null"]
        t = rest[0] if len(rest) == 1 else None
    if t is None and ("properties" in schema or "allOf" in schema):
        t = "object"
    return t if isinstance(t, str) else None


class Resolver:
    """Follows local `$ref`s in one document. Only chains of refs are followed, never nested schemas
    (those are cut away), and each chain is checked so that a cycle is an error rather than a hang."""

    def __init__(self, root: Any) -> None:
        self.root = root

    def deref(self, node: Any, chain: tuple[str, ...] = ()) -> tuple[Any, tuple[str, ...]]:
        while isinstance(node, dict) and "$ref" in node:
            ref = node["$ref"]
            if not isinstance(ref, str) or not ref.startswith("#/"):
                raise SpecError(f"unresolvable $ref {ref!r}: only local '#/...' refs are followed")
            if ref in chain:
                raise SpecError(f"cyclic $ref {ref!r} (via {' -> '.join(chain)})")
            chain = (*chain, ref)
            node = self._pointer(ref)
        return node, chain

    def _pointer(self, ref: str) -> Any:
        node = self.root
        for raw in ref[2:].split("/"):
            key = raw.replace("~1", "/").replace("~0", "~")
            if isinstance(node, dict) and key in node:
                node = node[key]
            elif isinstance(node, list) and key.isdigit() and int(key) < len(node):
                node = node[int(key)]
            else:
                raise SpecError(f"unresolvable $ref {ref!r}: {key!r} not found")
        return node

    def object_fields(self, schema: Any, chain: tuple[str, ...] = ()) -> tuple[dict[str, Any], list[str]]:
        """Properties (unresolved) and required names of an object schema, `allOf` parts merged in order
        because extending a base schema with `allOf` is how most documents share fields."""
        node, chain = self.deref(schema, chain)
        kind = json_type(node)
        if not isinstance(node, dict) or kind not in (None, "object"):
            raise SpecError(f"schema is of type {kind!r}, not an object")
        if "oneOf" in node or "anyOf" in node:
            raise SpecError("oneOf/anyOf schemas are not supported")
        props: dict[str, Any] = {}
        required: list[str] = []
        for part in node.get("allOf") or []:
            p, r = self.object_fields(part, chain)
            props.update(p)
            required += [x for x in r if x not in required]
        props.update(node.get("properties") or {})
        required += [x for x in node.get("required") or [] if x not in required]
        return props, required

    def scalar_fields(self, schema: Any) -> dict[str, Any]:
        """The scalar fields of a returned record: nested records and lists are cut because later stages
        store one flat row per returned record (validate_spec only checks the field names)."""
        props, _ = self.object_fields(schema)
        out: dict[str, Any] = {}
        for fname, fschema in props.items():
            field, _ = self.deref(fschema)
            ftype = json_type(field)
            if ftype in SCALAR_TYPES and not field.get("writeOnly"):
                out[fname] = {"type": ftype, "description": str(field.get("description") or "").strip()}
                if isinstance(field.get("enum"), list):
                    out[fname]["enum"] = [v for v in field["enum"] if v is not None]
        return out

    def returns(self, schema: Any) -> dict[str, Any]:
        """A record, a list of records, a scalar or a list of scalars; anything deeper becomes empty."""
        node, _ = self.deref(schema)
        kind = json_type(node)
        if kind in SCALAR_TYPES:
            return {"type": kind}
        if kind == "array":
            items, _ = self.deref(node.get("items") or {})
            ikind = json_type(items)
            if ikind == "object":
                return {"type": "array", "items": {"type": "object", "properties": self.scalar_fields(items)}}
            return {"type": "array", "items": {"type": ikind} if ikind in SCALAR_TYPES else {}}
        if kind == "object":
            return {"type": "object", "properties": self.scalar_fields(node)}
        return dict(EMPTY_RETURNS)


@dataclass
class _Doc:
    res: Resolver
    auth_headers: set[str]
    title_tag: str
    origin: str


def detect(doc: Any) -> bool:
    """Anything carrying `openapi` or `swagger` is ours, so a Swagger 2 file is refused by name, not
    mistaken for another format."""
    return isinstance(doc, dict) and ("openapi" in doc or "swagger" in doc)


def parse(doc: dict[str, Any], origin: str) -> Outcome:
    version = str(doc.get("openapi") or "")  # YAML reads `openapi: 3.1` as a float
    if not version.startswith("3"):
        found = f"swagger {doc.get('swagger')!r}" if "swagger" in doc else f"openapi {version!r}"
        return [], [("*", f"only OpenAPI 3 documents are read, this one is {found}")]
    paths = doc.get("paths")
    if not isinstance(paths, dict) or not paths:
        return [], [("*", "OpenAPI document has no `paths`")]
    schemes = ((doc.get("components") or {}).get("securitySchemes") or {}).values()
    auth = {
        str(s.get("name", "")).lower() for s in schemes if isinstance(s, dict) and s.get("in") == "header"
    }
    title = snake_case(str((doc.get("info") or {}).get("title") or ""))
    d = _Doc(Resolver(doc), auth, title, origin)
    specs: list[ToolSpec] = []
    refused: list[tuple[str, str]] = []
    for path, item in paths.items():
        if not isinstance(item, dict):
            refused.append((str(path), f"path {path}: path item is not an object"))
            continue
        for method in METHODS:
            op = item.get(method)
            if op is None:
                continue
            name = _tool_name(method, str(path), op)
            try:
                specs.append(_operation(d, method, str(path), item, op, name))
            except SpecError as exc:
                refused.append((name or f"{method.upper()} {path}", f"{method.upper()} {path}: {exc}"))
            except (AttributeError, KeyError, TypeError) as exc:  # a hand-broken document, not a bug of ours
                refused.append(
                    (name or f"{method.upper()} {path}", f"{method.upper()} {path}: malformed: {exc}")
                )
    return specs, refused


def _tool_name(method: str, path: str, op: Any) -> str:
    op_id = op.get("operationId") if isinstance(op, dict) else None
    if isinstance(op_id, str) and op_id.strip():
        return snake_case(op_id)
    return snake_case("_".join([method, *(s.strip("{}") for s in path.split("/") if s)]))


def _add(props: dict[str, Any], required: list[str], pname: str, prop: dict[str, Any], req: bool) -> None:
    """A name declared twice (path and body, say) is one parameter if the types agree, else an error."""
    if pname in props and props[pname]["type"] != prop["type"]:
        raise SpecError(f"parameter {pname!r} is declared twice with different types")
    props.setdefault(pname, prop)
    if req and pname not in required:
        required.append(pname)


def _operation(d: _Doc, method: str, path: str, item: dict[str, Any], op: Any, name: str) -> ToolSpec:
    if not isinstance(op, dict):
        raise SpecError("operation is not an object")
    props: dict[str, Any] = {}
    required: list[str] = []
    by_key: dict[tuple[Any, Any], Any] = {}  # operation parameters override path-item ones by (name, in)
    for raw in [*(item.get("parameters") or []), *(op.get("parameters") or [])]:
        p, _ = d.res.deref(raw)
        if not isinstance(p, dict) or not isinstance(p.get("name"), str):
            raise SpecError("a parameter has no name")
        by_key[(p["name"], p.get("in"))] = p
    for (pname, where), p in by_key.items():
        if where not in ("path", "query", "header"):
            continue  # cookies are session state, not tool input
        if where == "header":
            if pname.lower() in d.auth_headers or _AUTH_HEADER.search(pname):
                continue  # credentials are the runtime's business, never the model's
            if _TRANSPORT_HEADER.search(pname):
                continue
            pname = snake_case(pname)  # headers are case-insensitive and dashed by convention
        schema, _ = d.res.deref(p.get("schema") or {})
        if not isinstance(schema, dict):
            raise SpecError(f"parameter {pname!r}: schema is not an object")
        prop = _prop(d.res, name, pname, schema, p.get("description") or schema.get("description"))
        _add(props, required, pname, prop, where == "path" or p.get("required") is True)
    body_props, body_required = _body(d.res, op.get("requestBody"))
    for bname, braw in body_props.items():
        bschema, _ = d.res.deref(braw)
        if not isinstance(bschema, dict) or bschema.get("readOnly"):
            continue  # readOnly fields (server-assigned ids) are never sent
        prop = _prop(d.res, name, bname, bschema, bschema.get("description"))
        _add(props, required, bname, prop, bname in body_required)
    spec = ToolSpec(
        name=name,
        description=_describe(op),
        parameters={"type": "object", "properties": props, "required": required},
        returns=_returns(d.res, op.get("responses")),
        source_format=FORMAT,
        http_method=method,
        source_origin=d.origin,
        tags=_tags(op, d.title_tag),
    )
    validate_spec(spec)
    return spec


def _prop(res: Resolver, tool: str, pname: str, schema: dict[str, Any], description: Any) -> dict[str, Any]:
    """The parameter's schema, local `$ref`s inside it followed (arrays of records, nested objects)."""
    return parameter(tool, pname, {**schema, "description": description}, resolve=lambda n: res.deref(n)[0])


def _tags(op: dict[str, Any], title_tag: str) -> tuple[str, ...]:
    """The operation's own tags; the API's title when it has none, so every tool can be grouped."""
    tags = tuple(t for t in (snake_case(t) for t in op.get("tags") or [] if isinstance(t, str)) if t)
    return tags or ((title_tag,) if title_tag else ())


def _json_schema(content: Any) -> tuple[str | None, Any]:
    """The media type and schema of the JSON entry of a `content` map (`application/*+json` included)."""
    for media, entry in content.items() if isinstance(content, dict) else ():
        if _JSON_MEDIA.match(str(media)) and isinstance(entry, dict):
            return str(media), entry.get("schema")
    return None, None


def _body(res: Resolver, raw: Any) -> tuple[dict[str, Any], list[str]]:
    if raw is None:
        return {}, []
    body, _ = res.deref(raw)
    content = body.get("content") if isinstance(body, dict) else None
    media, schema = _json_schema(content)
    if media is None:
        found = ", ".join(map(str, content if isinstance(content, dict) else {})) or "none"
        raise SpecError(f"requestBody has no application/json content (found: {found})")
    try:
        return res.object_fields(schema or {})
    except SpecError as exc:
        raise SpecError(f"requestBody: {exc}") from exc


def _returns(res: Resolver, responses: Any) -> dict[str, Any]:
    by_code = {str(k): v for k, v in (responses or {}).items()}  # YAML reads `200:` as an int
    for code in ("200", "201"):
        if code in by_code:
            resp, _ = res.deref(by_code[code])
            _, schema = _json_schema(resp.get("content") if isinstance(resp, dict) else None)
            if schema is not None:
                try:
                    return res.returns(schema)
                except SpecError as exc:
                    raise SpecError(f"response {code}: {exc}") from exc
    return dict(EMPTY_RETURNS)


def _describe(op: dict[str, Any]) -> str:
    summary = str(op.get("summary") or "").strip()
    detail = str(op.get("description") or "").strip()
    if summary and detail and detail != summary:
        return f"{summary.rstrip('.')}. {detail}"
    return summary or detail
