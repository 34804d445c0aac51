"""Foreign spec formats (OpenAPI 3, ToolBench, BFCL, xLAM) normalised to ToolSpecs, with refusals that
name the offending operation, parameter or $ref, and de-duplication across formats."""

import json
from collections import defaultdict
from dataclasses import replace
from pathlib import Path

import pytest

from envgen.catalog import loaders
from envgen.catalog.loaders import load_paths, parse_document
from envgen.catalog.openapi import snake_case
from envgen.catalog.spec import NAME_RE, ToolSpec
from envgen.catalog.toolbench import tool_name
from envgen.environment.build import build_environment
from envgen.environment.schema import classify, lookup_entity

SPECS = Path(__file__).parent / "fixtures" / "specs"


def _parse(filename: str):
    return parse_document(json.loads((SPECS / filename).read_text()), filename)


def _types(spec) -> dict[str, str]:
    return {k: v["type"] for k, v in spec.properties.items()}


def _reasons(refused) -> dict[str, str]:
    return {r.name: r.reason for r in refused}


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("getBookByID", "get_book_by_id"),
        ("create-book", "create_book"),
        ("books.updatePrice", "books_update_price"),
        ("HTTPServerError", "http_server_error"),
        ("SkyCast Weather", "sky_cast_weather"),
        ("math.factorial", "math_factorial"),
        ("get_stock_price_v2", "get_stock_price_v2"),
    ],
)
def test_snake_case(raw, expected):
    assert snake_case(raw) == expected


def test_openapi_operations_become_flat_tools():
    specs, refused = _parse("bookshop_openapi.json")
    by = {s.name: s for s in specs}
    assert [s.name for s in specs] == [
        "list_books",  # operationId camelCase
        "create_book",  # dashes
        "search_books",
        "get_book_by_id",
        "books_update_price",  # dots
        "post_orders",  # no operationId: method + path
        "delete_orders_order_id",
    ]
    assert {s.source_format for s in specs} == {"openapi-3"} and not refused
    # an array query parameter is a list of what its items say
    assert by["search_books"].properties["authors"] == {
        "type": "array",
        "description": "",
        "items": {"type": "string"},
    }

    books = by["list_books"]
    # $ref'd query param kept, a data header snake-cased; the apiKey header, the tracing header
    # (X-Request-ID would pass for a key of an `x_request` entity) and the cookie left out
    assert _types(books) == {"limit": "integer", "genre": "string", "x_store_region": "string"}
    assert books.required == [] and books.properties["limit"]["default"] == 20
    assert books.properties["genre"]["enum"] == ["fiction", "history", "science"]
    assert books.description == "List books in the catalogue. Filter by genre; newest first."
    assert books.returns_many and books.tags == ("books",)
    # nested publisher object and keywords array cut; the $ref'd enum kept
    assert list(books.returned_object["properties"]) == [
        "book_id",
        "title",
        "author",
        "price",
        "in_stock",
        "status",
    ]
    assert books.returned_object["properties"]["status"]["enum"] == ["available", "reserved", "sold"]

    create = by["create_book"]
    assert _types(create) == {
        "title": "string",
        "author": "string",
        "price": "number",
        "in_stock": "boolean",
        "status": "string",
    }
    assert create.required == ["title", "author", "price"]
    assert not create.returns_many and "book_id" in create.returned_object["properties"]

    assert by["get_book_by_id"].required == ["book_id"]  # path-item level $ref'd parameter
    price = by["books_update_price"]
    assert _types(price) == {"book_id": "string", "price": "number", "reason": "string"}
    assert price.required == ["book_id", "price"] and price.tags == ("books", "pricing")

    order = by["post_orders"]  # requestBody via components/requestBodies, allOf merged
    assert set(order.properties) == {"status", "gift_note", "book_id", "quantity"}  # readOnly order_id out
    assert order.required == ["book_id", "quantity"]
    assert list(order.returns["properties"]) == ["order_id", "status", "book_id", "quantity"]  # writeOnly out

    cancel = by["delete_orders_order_id"]
    assert cancel.required == ["order_id"] and cancel.returns == {"type": "object", "properties": {}}
    assert cancel.tags == ("corner_bookshop",)  # no operation tags: info.title


def test_openapi_refusals_name_the_broken_ref_and_the_rest_loads():
    specs, refused = _parse("openapi_broken_refs.json")
    assert [s.name for s in specs] == ["get_parcel"]
    reasons = _reasons(refused)
    assert set(reasons) == {
        "list_parcel_events",
        "get_parcel_route",
        "print_label",
        "upload_parcel_photo",
        "create_parcels",
    }
    assert "unresolvable $ref '#/components/parameters/ParcelId'" in reasons["list_parcel_events"]
    assert "cyclic $ref '#/components/schemas/RouteA'" in reasons["get_parcel_route"]
    assert "'shared/label.yaml#/LabelRequest'" in reasons["print_label"]
    assert "multipart/form-data" in reasons["upload_parcel_photo"]
    assert "requestBody" in reasons["create_parcels"] and "'array'" in reasons["create_parcels"]


def test_openapi_yaml_31_nullable_types_and_integer_status_keys():
    pytest.importorskip("yaml")
    load = load_paths([SPECS / "pet_clinic_openapi.yaml"])
    assert [s.name for s in load.specs] == ["get_owner", "list_owner_visits"] and not load.refused
    owner, visits = load.specs
    assert list(owner.returns["properties"]) == ["owner_id", "full_name", "phone"]  # pets list cut
    assert owner.returns["properties"]["phone"]["type"] == "string"  # ["string", "null"]
    assert _types(visits) == {"ownerId": "string", "since": "string"} and visits.required == ["ownerId"]
    assert visits.returns_many and "fee" in visits.returned_object["properties"]


def test_yaml_without_pyyaml_is_refused_not_skipped(monkeypatch):
    monkeypatch.setattr(loaders, "yaml", None)
    load = load_paths([SPECS / "pet_clinic_openapi.yaml"])
    assert not load.specs and "PyYAML" in load.refused[0].reason


def test_swagger_2_is_refused_by_version():
    specs, refused = parse_document({"swagger": "2.0", "paths": {"/x": {}}}, "mem")
    assert not specs and len(refused) == 1 and "swagger '2.0'" in refused[0].reason


def test_toolbench_apis_become_tools_with_mapped_types():
    specs, refused = _parse("toolbench_skycast_weather.json")
    assert not refused
    current, daily = specs
    assert current.name == "skycast_weather__current_conditions"  # standardized_name wins
    assert daily.name == "skycast_weather__daily_forecast"
    assert current.tags == ("skycast_weather", "weather") and current.source_format == "toolbench"
    assert _types(current) == {"q": "string", "units": "string", "lang": "string"}  # ENUM -> string
    assert current.required == ["q"]
    assert list(current.returns["properties"]) == ["location", "temp_c", "is_day"]  # nested cut
    assert _types(daily) == {"location": "string", "days": "number", "start_date": "string"}
    assert "(latitude,longitude)" in daily.properties["location"]["description"]  # GEOPOINT
    assert "(YYYY-MM-DD)" in daily.properties["start_date"]["description"]  # `DATE (YYYY-MM-DD)`
    assert "default" not in daily.properties["days"]  # RapidAPI's "3" is not a number

    specs, refused = _parse("toolbench_pantry_recipes.json")
    assert [s.name for s in specs] == [
        "pantry_recipes__search_recipes",
        "pantry_recipes__nutrition_for_ingredients",
        "pantry_recipes__recipe_by_id",
    ]
    search, nutrition, by_id = specs
    assert nutrition.properties["ingredients"]["items"] == {"type": "string"}  # ARRAY: a list of strings
    assert _types(search) == {
        "query": "string",
        "max_results": "number",
        "vegetarian": "boolean",
        "ready_by": "string",
    }
    assert search.required == ["query"] and search.properties["vegetarian"]["default"] is False
    assert by_id.description == "Find recipes from what is in your pantry."  # empty API description
    assert by_id.tags == ("pantry_recipes", "food")
    assert not refused


def test_toolbench_names_stay_within_name_re():
    long_tool = tool_name("a_very_long_rapidapi_tool_name_" * 3, "get_quote")
    assert NAME_RE.match(long_tool) and long_tool.endswith("__get_quote")
    one, two = (tool_name("t", "x" * 70 + suffix) for suffix in ("_one", "_two"))
    assert NAME_RE.match(one) and NAME_RE.match(two) and one != two
    assert tool_name("4bro_1337x", "search") == "tool_4bro_1337x__search"


def test_bfcl_list_maps_python_types_and_dotted_names():
    specs, refused = _parse("bfcl_functions.json")
    by = {s.name: s for s in specs}
    assert list(by) == [
        "math_factorial",
        "geometry_circle_area",
        "finance_compound_interest",
        "stats_weighted_mean",
        "convert_temperature",
    ]
    assert {s.source_format for s in specs} == {"bfcl"}
    assert by["math_factorial"].tags == ("math",) and by["convert_temperature"].tags == ()
    assert _types(by["geometry_circle_area"]) == {"radius": "number", "units": "string"}  # float -> number
    assert by["geometry_circle_area"].properties["units"]["default"] == "cm"
    compound = by["finance_compound_interest"]
    assert _types(compound) == {
        "principal": "number",
        "annual_rate": "number",
        "times_per_year": "integer",
        "years": "integer",
        "round_to_cents": "boolean",
    }
    assert compound.required == ["principal", "annual_rate", "years"]
    assert by["convert_temperature"].properties["to_unit"]["enum"] == ["C", "F", "K"]
    assert by["stats_weighted_mean"].properties["values"]["items"] == {"type": "number"}  # `float` items
    assert not refused


def test_bfcl_question_records_are_not_mistaken_for_openai_tools():
    lines = (SPECS / "bfcl_questions.jsonl").read_text().splitlines()
    records = [json.loads(lines[0]), json.loads(lines[2])]  # every record has a `function` key
    specs, refused = parse_document(records, "mem")
    assert [s.name for s in specs] == ["math_factorial", "maps_route_distance", "maps_geocode"]
    assert specs[0].source_format == "bfcl" and not refused
    assert specs[1].properties["avoid"]["type"] == "array"  # BFCL's `tuple`


def test_jsonl_lines_are_documents_and_a_bad_line_costs_only_itself():
    path = SPECS / "bfcl_questions.jsonl"
    load = load_paths([path])
    assert [(s.name, s.source_origin) for s in load.specs] == [
        ("math_factorial", f"{path}:1"),
        ("maps_route_distance", f"{path}:3"),
        ("maps_geocode", f"{path}:3"),
    ]
    assert [(r.origin, r.name) for r in load.refused] == [(f"{path}:2", "*")]
    assert "unreadable JSON" in load.refused[0].reason


def test_xlam_record_with_tools_as_json_string():
    specs, refused = _parse("xlam_record.json")
    by = {s.name: s for s in specs}
    assert list(by) == ["currency_convert", "giveaways_by_platform", "bulk_isbn_lookup", "math_factorial"]
    assert {s.source_format for s in specs} == {"xlam"}
    convert = by["currency_convert"]
    assert _types(convert) == {
        "amount": "number",
        "from_currency": "string",
        "to_currency": "string",
        "round_digits": "integer",
    }
    assert convert.required == ["amount", "from_currency", "to_currency"]  # `int, optional` is not
    giveaways = by["giveaways_by_platform"]  # an argument called `type` is still an argument
    assert _types(giveaways) == {"platform": "string", "type": "string", "include_expired": "boolean"}
    assert giveaways.required == [] and giveaways.properties["include_expired"]["default"] is False
    assert by["bulk_isbn_lookup"].properties["isbns"]["items"] == {"type": "string"}  # `List[str]`
    assert not refused


def test_xlam_record_with_unreadable_tools_is_refused():
    specs, refused = parse_document({"id": 7, "query": "q", "tools": "[{not json"}, "mem")
    assert not specs and refused[0].name == "record 7" and "not valid JSON" in refused[0].reason


def test_malformed_functions_are_refused_each_with_its_reason():
    specs, refused = _parse("bfcl_malformed.json")
    assert [s.name for s in specs] == ["text_reverse"]
    reasons = _reasons(refused)
    assert "without a name" in reasons["#0"]
    assert "parameters must be an object schema, got str" in reasons["text_word_count"]
    assert "got type 'array'" in reasons["text_split_lines"]


@pytest.mark.parametrize("doc", [{"hello": "world"}, 42, "just text"])
def test_unrecognised_document_lists_the_accepted_formats(doc):
    specs, refused = parse_document(doc, "mem")
    assert not specs and len(refused) == 1 and refused[0].name == "*"
    assert all(f in refused[0].reason for f in ("OpenAPI 3", "ToolBench", "BFCL", "xLAM", "OpenAI"))


def test_same_tool_from_two_formats_collapses_and_a_clash_is_refused(tmp_path):
    bfcl = {
        "name": "math.factorial",
        "parameters": {"type": "dict", "properties": {"number": {"type": "integer"}}},
    }
    openai = {
        "type": "function",
        "function": {
            "name": "math_factorial",
            "parameters": {"type": "object", "properties": {"number": {"type": "integer"}}},
        },
    }
    xlam = {"name": "math.factorial", "parameters": {"n": {"type": "int"}}}
    (tmp_path / "a.json").write_text(json.dumps([bfcl]))
    (tmp_path / "b.json").write_text(json.dumps([openai]))
    (tmp_path / "c.json").write_text(json.dumps([xlam]))
    load = load_paths([tmp_path])
    assert [(s.name, s.source_format) for s in load.specs] == [("math_factorial", "bfcl")]
    assert load.duplicates == 1
    assert [(Path(r.origin).name, r.name) for r in load.refused] == [("c.json", "math_factorial")]
    assert "already used by math_factorial(number:integer)" in load.refused[0].reason


def test_fixture_folder_loads_the_good_and_reports_the_bad():
    pytest.importorskip("yaml")
    load = load_paths([SPECS])
    assert [s.name for s in load.specs] == [
        "math_factorial",
        "geometry_circle_area",
        "finance_compound_interest",
        "stats_weighted_mean",
        "convert_temperature",
        "text_reverse",
        "maps_route_distance",
        "maps_geocode",
        "list_books",
        "create_book",
        "search_books",
        "get_book_by_id",
        "books_update_price",
        "post_orders",
        "delete_orders_order_id",
        "get_parcel",
        "get_owner",
        "list_owner_visits",
        "pantry_recipes__search_recipes",
        "pantry_recipes__nutrition_for_ingredients",
        "pantry_recipes__recipe_by_id",
        "skycast_weather__current_conditions",
        "skycast_weather__daily_forecast",
        "currency_convert",
        "giveaways_by_platform",
        "bulk_isbn_lookup",
    ]
    # math_factorial again from the JSONL record and from the OpenAI list: same signature, dropped
    assert load.duplicates == 2
    refused = sorted((Path(r.origin).name, r.name) for r in load.refused)
    assert refused == [
        ("bfcl_malformed.json", "#0"),
        ("bfcl_malformed.json", "text_split_lines"),
        ("bfcl_malformed.json", "text_word_count"),
        ("bfcl_questions.jsonl:2", "*"),
        ("broken.json", "*"),
        ("openai_tools.json", "get_book_by_id"),  # same name as the bookshop's, other parameters
        ("openapi_broken_refs.json", "create_parcels"),
        ("openapi_broken_refs.json", "get_parcel_route"),
        ("openapi_broken_refs.json", "list_parcel_events"),
        ("openapi_broken_refs.json", "print_label"),
        ("openapi_broken_refs.json", "upload_parcel_photo"),
        ("xlam_record.json", "math_factorial"),  # xLAM's factorial takes `n`: a clash, not a duplicate
    ]
    assert all(r.reason for r in load.refused)


def test_declared_http_method_decides_writes_when_the_name_has_no_verb():
    """OpenAPI operations without an operationId and ToolBench APIs are named after paths and tools, so
    the programmatiser reads the declared method: POST inserts, DELETE deletes, GET reads."""
    load = load_paths([SPECS])
    by = {s.name: s for s in load.specs}
    assert by["post_orders"].http_method == "post" and classify(by["post_orders"]) == "insert"
    assert classify(by["delete_orders_order_id"]) == "delete"
    assert by["skycast_weather__daily_forecast"].http_method == "get"
    assert classify(by["skycast_weather__daily_forecast"]) in ("get", "list")
    # a known verb in the name still wins over the method
    assert classify(replace(by["post_orders"], name="cancel_orders")) == "update"


def test_every_imported_tool_executes_including_stateless_lookups():
    """Stateless APIs (weather, maths) name no entity id: each becomes a lookup table of its own whose
    columns are its parameters and returns, so its reads find seeded records matching the arguments."""
    by_file: dict[str, list] = defaultdict(list)
    for spec in load_paths([SPECS]).specs:
        by_file[spec.source_origin.split(":")[0]].append(spec)
    assert len(by_file) >= 7
    for origin, specs in by_file.items():
        env, snap, report = build_environment("imported", "imported", specs)
        snap.close()
        assert report.refused == {}, origin
        assert sorted(report.kept) == sorted(s.name for s in specs)
    weather = [s for s in load_paths([SPECS]).specs if s.name.startswith("skycast_weather__")]
    env, snap, report = build_environment("weather", "weather", weather)
    table = env.table("skycast_weather_daily_forecast")
    assert table.key == "skycast_weather_daily_forecast_id"
    assert {"location", "days"} <= {c.name for c in table.columns}
    call = report.probes["skycast_weather__daily_forecast"]
    rows = [r for r in snap.execute("SELECT location FROM skycast_weather_daily_forecast").fetchall()]
    assert (call["location"],) in rows  # the probe looked up a seeded record


def test_lookup_tables_get_safe_distinct_names():
    def spec(name: str) -> ToolSpec:
        return ToolSpec(name, "", {"type": "object", "properties": {}}, {}, "test", "test")

    assert lookup_entity(spec("get_2fa_code")) == "get_2fa_code"  # an identifier must start with a letter
    assert lookup_entity(spec("get_daily_forecast")) == "daily_forecast"
    a, b = lookup_entity(spec("get_" + "a" * 47 + "_b")), lookup_entity(spec("get_" + "a" * 47 + "_c"))
    assert a != b and len(a) <= 48 and len(b) <= 48


def test_toolbench_query_files_give_each_api_once_with_fields_from_its_example_response():
    """ToolBench's query files carry an `api_list` per query, each API naming its own tool; the same API in
    several queries is one tool, and `template_response` gives the returned record's fields."""
    load = load_paths([Path(__file__).parent / "fixtures" / "toolbench_queries" / "queries.json"])
    assert not load.refused
    by = {s.name: s for s in load.specs}
    assert sorted(by) == [
        "chirp_microblog__get_chirp",
        "chirp_microblog__post_chirp",
        "weather_now__current_weather",
    ]
    post = by["chirp_microblog__post_chirp"]
    assert post.description == "Publish a chirp on the user's timeline." and post.http_method == "post"
    assert post.returned_object["properties"] == {
        "chirp_id": {"type": "integer", "description": ""},
        "text": {"type": "string", "description": ""},
        "created_at": {"type": "string", "description": ""},
    }
    assert {
        k: v["type"] for k, v in by["chirp_microblog__get_chirp"].returned_object["properties"].items()
    } == {
        "chirp_id": "integer",
        "text": "string",
        "likes": "integer",
        "pinned": "boolean",
    }
    weather = by["weather_now__current_weather"]
    assert weather.returns_many and weather.returned_object["properties"]["temp_c"]["type"] == "number"
    assert post.tags == ("chirp_microblog", "social")
