//! Tests of both schema dialects: the fixture corpus checked against Gemini's rules, and the
//! conversion rules one by one.

use serde_json::{Map, Value, json};

use super::helpers::resolve;
use super::json_schema::{Slot, slot};
use super::*;

macro_rules! fixtures {
    ($($name:literal),* $(,)?) => {
        [$(($name, include_str!(concat!("../../../../tests/fixtures/schemas/", $name, ".json")))),*]
    };
}

const FIXTURES: [(&str, &str); 24] = fixtures![
    "allof_composition",
    "const_discriminated_union",
    "deeply_nested_objects",
    "formats_and_bounds",
    "free_form_objects",
    "integer_and_boolean_enums",
    "mcp_browser_click",
    "mcp_fetch_url",
    "mcp_filesystem_edit_file",
    "mcp_filesystem_read_multiple_files",
    "mcp_github_create_issue",
    "mcp_no_parameters",
    "multi_type_unions",
    "nested_arrays",
    "nullable_type_arrays",
    "openai_strict_nullable_enum",
    "pydantic_discriminated_union",
    "pydantic_order_with_defs",
    "recursive_defs_comment_thread",
    "recursive_tree_root_ref",
    "string_enum_only",
    "tuple_prefix_items",
    "zod_named_definitions_ref",
    "zod_strict_response_format",
];

struct Fixture {
    file: &'static str,
    schema: Value,
    enum_only: bool,
}

fn fixtures() -> Vec<Fixture> {
    FIXTURES
        .iter()
        .map(|(file, text)| {
            let fixture: Value = serde_json::from_str(text).unwrap();
            assert!(fixture["name"].is_string(), "{file}: name");
            assert!(fixture["source"].is_string(), "{file}: source");
            Fixture {
                file,
                schema: fixture["schema"].clone(),
                enum_only: fixture["enumOnly"] == json!(true),
            }
        })
        .collect()
}

#[test]
fn every_fixture_file_is_listed() {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/schemas");
    let mut on_disk: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|entry| entry.unwrap().file_name().into_string().unwrap())
        .filter_map(|name| name.strip_suffix(".json").map(str::to_owned))
        .collect();
    on_disk.sort();
    let listed: Vec<&str> = FIXTURES.iter().map(|(name, _)| *name).collect();
    assert_eq!(on_disk, listed);
}

// --- checkers -----------------------------------------------------------------------------

/// Gemini's rules for its `OpenAPI` subset, R1–R7, plus the key allow-list.
fn openapi_violations(schema: &Value, path: &str, out: &mut Vec<String>) {
    let Value::Object(map) = schema else {
        out.push(format!("{path}: not an object"));
        return;
    };
    for key in map.keys() {
        if !OPENAPI_KEYS.contains(&key.as_str()) {
            out.push(format!("{path}: key `{key}` is not allowed"));
        }
    }
    let gemini_type = map.get("type").and_then(Value::as_str);
    let any_of = map.get("anyOf").and_then(Value::as_array);
    if gemini_type.is_none() && any_of.is_none_or(Vec::is_empty) {
        out.push(format!("{path}: R1 neither type nor a non-empty anyOf"));
    }
    if let Some(t) = map.get("type")
        && !matches!(
            t.as_str(),
            Some("STRING" | "NUMBER" | "INTEGER" | "BOOLEAN" | "ARRAY" | "OBJECT")
        )
    {
        out.push(format!("{path}: bad type {t}"));
    }
    let properties = map.get("properties").and_then(Value::as_object);
    if gemini_type == Some("OBJECT") && properties.is_none_or(Map::is_empty) {
        out.push(format!("{path}: R2 OBJECT without properties"));
    }
    if map.contains_key("properties") && gemini_type != Some("OBJECT") {
        out.push(format!("{path}: properties on a non-OBJECT"));
    }
    let is_property = |name: &Value| {
        name.as_str()
            .is_some_and(|n| properties.is_some_and(|p| p.contains_key(n)))
    };
    if let Some(required) = map.get("required") {
        let names = required.as_array().cloned().unwrap_or_default();
        if !names.iter().all(is_property) {
            out.push(format!("{path}: R3 required {required} not in properties"));
        }
    }
    if let Some(values) = map.get("enum") {
        let strings = values
            .as_array()
            .is_some_and(|v| !v.is_empty() && v.iter().all(Value::is_string));
        if gemini_type != Some("STRING") || !strings {
            out.push(format!("{path}: R4 enum {values} on {gemini_type:?}"));
        }
    }
    if gemini_type == Some("ARRAY") && !map.contains_key("items") {
        out.push(format!("{path}: R5 ARRAY without items"));
    }
    if map.contains_key("items") && gemini_type != Some("ARRAY") {
        out.push(format!("{path}: items on a non-ARRAY"));
    }
    if let Some(format) = map.get("format") {
        let ok = matches!(
            (gemini_type, format.as_str()),
            (Some("STRING"), Some("enum" | "date-time"))
                | (Some("NUMBER"), Some("float" | "double"))
                | (Some("INTEGER"), Some("int32" | "int64"))
        );
        if !ok {
            out.push(format!("{path}: R6 format {format} on {gemini_type:?}"));
        }
    }
    if let Some(ordering) = map.get("propertyOrdering") {
        let names = ordering.as_array().cloned().unwrap_or_default();
        if !names.iter().all(is_property) {
            out.push(format!("{path}: R7 propertyOrdering {ordering}"));
        }
    }
    for (name, child) in properties.into_iter().flatten() {
        openapi_violations(child, &format!("{path}.properties.{name}"), out);
    }
    if let Some(items) = map.get("items") {
        openapi_violations(items, &format!("{path}.items"), out);
    }
    for (i, branch) in any_of.into_iter().flatten().enumerate() {
        openapi_violations(branch, &format!("{path}.anyOf[{i}]"), out);
    }
}

fn assert_gemini_openapi(schema: &Value, label: &str) {
    let mut violations = Vec::new();
    openapi_violations(schema, "$", &mut violations);
    assert!(
        violations.is_empty(),
        "{label}: {violations:#?}\n{schema:#}"
    );
}

/// What Gemini's JSON Schema mode insists on.
fn json_schema_violations(root: &Value) -> Vec<String> {
    let mut out = Vec::new();
    if !root.is_object() {
        out.push("root is not an object".to_owned());
    }
    let mut stack = vec![("$".to_owned(), root)];
    while let Some((path, node)) = stack.pop() {
        let Value::Object(map) = node else { continue };
        if map.contains_key("$schema") {
            out.push(format!("{path}: $schema"));
        }
        if let Some(reference) = map.get("$ref") {
            match reference.as_str().map(|r| resolve(root, r)) {
                Some(Ok(_)) => {}
                _ => out.push(format!("{path}: $ref {reference} does not resolve")),
            }
            if map
                .keys()
                .any(|k| !matches!(k.as_str(), "$ref" | "description" | "default"))
            {
                out.push(format!("{path}: $ref with other siblings"));
            }
        }
        if let Some(declared) = map.get("type") {
            let names = match declared {
                Value::Array(names) => names.clone(),
                one => vec![one.clone()],
            };
            let known = [
                "string", "number", "integer", "boolean", "object", "array", "null",
            ];
            if names.is_empty()
                || !names
                    .iter()
                    .all(|n| n.as_str().is_some_and(|n| known.contains(&n)))
            {
                out.push(format!("{path}: type {declared}"));
            }
        }
        for (key, value) in map {
            match (slot(key), value) {
                (None, _) => {}
                (Some(_), Value::Array(items)) => {
                    for (i, item) in items.iter().enumerate() {
                        stack.push((format!("{path}.{key}[{i}]"), item));
                    }
                }
                (Some(Slot::Map | Slot::MapOfSome), Value::Object(map)) => {
                    for (name, item) in map {
                        stack.push((format!("{path}.{key}.{name}"), item));
                    }
                }
                (Some(_), value) => stack.push((format!("{path}.{key}"), value)),
            }
        }
    }
    out
}

fn openapi(schema: &Value) -> Value {
    let out = to_openapi(schema).unwrap();
    assert_gemini_openapi(&out, &schema.to_string());
    out
}

fn description(schema: &Value) -> &str {
    schema["description"].as_str().unwrap_or_default()
}

/// How many times `key` nests inside itself following `path` from `schema`.
fn nesting(schema: &Value, path: &[&str]) -> usize {
    let mut depth = 0;
    let mut node = schema;
    loop {
        let mut next = node;
        for step in path {
            next = &next[*step];
        }
        if next.is_null() {
            return depth;
        }
        depth += 1;
        node = next;
    }
}

// --- fixtures -----------------------------------------------------------------------------

#[test]
fn every_fixture_converts_to_valid_openapi() {
    for fixture in fixtures() {
        let out = to_openapi(&fixture.schema).unwrap_or_else(|e| panic!("{}: {e}", fixture.file));
        assert_gemini_openapi(&out, fixture.file);
    }
}

#[test]
fn every_fixture_is_a_valid_json_schema_with_local_refs() {
    for fixture in fixtures() {
        let out =
            to_json_schema(&fixture.schema).unwrap_or_else(|e| panic!("{}: {e}", fixture.file));
        let violations = json_schema_violations(&out);
        assert!(violations.is_empty(), "{}: {violations:#?}", fixture.file);
    }
}

#[test]
fn every_object_fixture_makes_function_parameters() {
    for fixture in fixtures().iter().filter(|f| !f.enum_only) {
        let json_schema = function_parameters_json_schema(&fixture.schema)
            .unwrap_or_else(|e| panic!("{}: {e}", fixture.file));
        assert_eq!(json_schema["type"], json!("object"), "{}", fixture.file);
        assert!(json_schema_violations(&json_schema).is_empty());
        let openapi = function_parameters_openapi(&fixture.schema)
            .unwrap_or_else(|e| panic!("{}: {e}", fixture.file));
        match openapi {
            None => assert_eq!(fixture.file, "mcp_no_parameters"),
            Some(openapi) => {
                assert_eq!(openapi["type"], json!("OBJECT"), "{}", fixture.file);
                assert_gemini_openapi(&openapi, fixture.file);
            }
        }
    }
}

#[test]
fn only_the_enum_fixture_is_enum_only() {
    for fixture in fixtures() {
        assert_eq!(
            enum_only(&fixture.schema).is_some(),
            fixture.enum_only,
            "{}",
            fixture.file
        );
    }
}

#[test]
fn pydantic_fixture_keeps_its_shape() {
    let fixture = fixtures()
        .into_iter()
        .find(|f| f.file == "pydantic_order_with_defs")
        .unwrap();
    let out = openapi(&fixture.schema);
    let props = &out["properties"];
    assert_eq!(props["items"]["items"]["type"], json!("OBJECT"));
    assert_eq!(
        props["items"]["items"]["properties"]["quantity"]["minimum"],
        json!(1)
    );
    assert_eq!(props["billing_address"]["type"], json!("OBJECT"));
    assert_eq!(props["billing_address"]["nullable"], json!(true));
    assert_eq!(
        description(&props["shipping_address"]),
        "Where to ship the order."
    );
    assert_eq!(
        props["shipping"],
        json!({"type": "STRING", "enum": ["standard", "express", "overnight"], "title": "Shipping", "default": "standard"})
    );
    assert_eq!(
        out["required"],
        json!(["customer_id", "items", "shipping_address"])
    );
}

// --- $ref ---------------------------------------------------------------------------------

#[test]
fn refs_into_defs_definitions_and_any_pointer_are_inlined() {
    let schema = json!({
        "type": "object",
        "properties": {
            "a": {"$ref": "#/$defs/A"},
            "b": {"$ref": "#/definitions/B"},
            "c": {"$ref": "#/properties/a"},
            "d": {"$ref": "#/$defs/With%20Space"},
            "e": {"$ref": "#/$defs/sl~1ash"}
        },
        "$defs": {
            "A": {"type": "string", "description": "from A"},
            "With Space": {"type": "boolean"},
            "sl/ash": {"type": "integer"}
        },
        "definitions": {"B": {"type": "number"}}
    });
    let out = openapi(&schema);
    let props = &out["properties"];
    assert_eq!(
        props["a"],
        json!({"type": "STRING", "description": "from A"})
    );
    assert_eq!(props["b"], json!({"type": "NUMBER"}));
    assert_eq!(props["c"], props["a"]);
    assert_eq!(props["d"], json!({"type": "BOOLEAN"}));
    assert_eq!(props["e"], json!({"type": "INTEGER"}));
}

#[test]
fn ref_siblings_override_the_target_annotations() {
    let schema = json!({
        "type": "object",
        "properties": {"a": {"$ref": "#/$defs/A", "description": "outer", "title": "T"}},
        "$defs": {"A": {"type": "string", "description": "inner", "maxLength": 3}}
    });
    assert_eq!(
        openapi(&schema)["properties"]["a"],
        json!({"type": "STRING", "description": "outer", "title": "T", "maxLength": 3})
    );
}

#[test]
fn unresolvable_refs_are_errors_that_name_the_ref() {
    let missing = json!({"type": "object", "properties": {"a": {"$ref": "#/$defs/Missing"}}});
    assert_eq!(
        to_openapi(&missing).unwrap_err(),
        "`$ref` `#/$defs/Missing` does not resolve"
    );
    assert_eq!(
        to_json_schema(&missing).unwrap_err(),
        "`$ref` `#/$defs/Missing` does not resolve"
    );
    let remote = json!({"properties": {"a": {"$ref": "https://example.com/s.json#/A"}}});
    assert!(to_openapi(&remote).unwrap_err().contains("is not local"));
    assert!(
        to_json_schema(&remote)
            .unwrap_err()
            .contains("is not local")
    );
    let anchor = json!({"properties": {"a": {"$ref": "#thing"}}});
    assert!(
        to_json_schema(&anchor)
            .unwrap_err()
            .contains("JSON-pointer")
    );
    let not_schema = json!({"properties": {"a": {"$ref": "#/required"}}, "required": ["a"]});
    assert!(
        to_openapi(&not_schema)
            .unwrap_err()
            .contains("not a schema")
    );
}

#[test]
fn recursive_root_ref_unrolls_three_levels_then_ends_in_an_empty_array() {
    let schema = json!({
        "type": "object",
        "properties": {
            "name": {"type": "string"},
            "children": {"type": "array", "items": {"$ref": "#"}}
        },
        "required": ["name", "children"]
    });
    let out = openapi(&schema);
    // The root, then two nested copies whose `children` can only be empty.
    assert_eq!(nesting(&out, &["properties", "children", "items"]), 3);
    let deepest = &out["properties"]["children"]["items"]["properties"]["children"]["items"];
    assert_eq!(deepest["required"], json!(["name", "children"]));
    let cut = &deepest["properties"]["children"];
    assert_eq!(cut["type"], json!("ARRAY"));
    assert_eq!(cut["maxItems"], json!(0));
    assert_eq!(description(cut), "always empty");
}

#[test]
fn a_directly_recursive_property_is_dropped_past_the_limit() {
    let schema = json!({
        "type": "object",
        "properties": {"name": {"type": "string"}, "parent": {"$ref": "#"}},
        "required": ["name", "parent"]
    });
    let out = openapi(&schema);
    assert_eq!(nesting(&out, &["properties", "parent"]), 2);
    let deepest = &out["properties"]["parent"]["properties"]["parent"];
    assert_eq!(deepest["properties"], json!({"name": {"type": "STRING"}}));
    assert_eq!(
        deepest["required"],
        json!(["name"]),
        "dropped from required"
    );
}

#[test]
fn recursive_defs_through_optional_end_in_an_always_null() {
    let schema = json!({
        "$ref": "#/$defs/Node",
        "$defs": {"Node": {
            "type": "object",
            "properties": {
                "value": {"type": "integer"},
                "next": {"anyOf": [{"$ref": "#/$defs/Node"}, {"type": "null"}]}
            },
            "required": ["value", "next"]
        }}
    });
    let out = openapi(&schema);
    // Node itself, then two nested copies; the third `next` can only be null.
    assert_eq!(nesting(&out, &["properties", "next"]), 3);
    let last = &out["properties"]["next"]["properties"]["next"];
    assert_eq!(last["type"], json!("OBJECT"));
    assert_eq!(last["nullable"], json!(true));
    assert_eq!(
        last["properties"]["next"],
        json!({"type": "STRING", "nullable": true, "description": "Always null."})
    );
    assert_eq!(last["required"], json!(["value", "next"]));
}

#[test]
fn recursion_that_empties_an_object_degrades_to_a_json_string() {
    let schema = json!({
        "type": "object",
        "properties": {"self": {"$ref": "#/properties/self/items/0"}},
    });
    // A pointer into a non-schema list: an error, not a loop.
    assert!(to_openapi(&schema).is_err());
    let only_recursive = json!({
        "type": "object",
        "properties": {"loop": {"$ref": "#"}},
        "required": ["loop"]
    });
    let out = openapi(&only_recursive);
    let innermost = &out["properties"]["loop"]["properties"]["loop"];
    assert_eq!(innermost["type"], json!("STRING"));
    assert!(description(innermost).contains("JSON-encoded"));
}

#[test]
fn ref_cycles_without_structure_terminate() {
    let schema = json!({
        "type": "object",
        "properties": {"a": {"$ref": "#/$defs/A"}, "b": {"type": "string"}},
        "$defs": {"A": {"$ref": "#/$defs/B"}, "B": {"$ref": "#/$defs/A"}}
    });
    let out = openapi(&schema);
    assert_eq!(out["properties"], json!({"b": {"type": "STRING"}}));
}

// --- nullability and unions -----------------------------------------------------------------

#[test]
fn type_arrays_with_null_become_nullable() {
    let out = openapi(&json!({"type": ["string", "null"], "maxLength": 5}));
    assert_eq!(
        out,
        json!({"type": "STRING", "nullable": true, "maxLength": 5})
    );
    let out = openapi(&json!({"type": ["array", "null"], "items": {"type": "integer"}}));
    assert_eq!(
        out,
        json!({"type": "ARRAY", "nullable": true, "items": {"type": "INTEGER"}})
    );
}

#[test]
fn any_of_and_one_of_with_a_null_branch_become_nullable() {
    for key in ["anyOf", "oneOf"] {
        let schema = json!({
            key: [{"type": "integer"}, {"type": "null"}],
            "default": null,
            "title": "Limit"
        });
        assert_eq!(
            openapi(&schema),
            json!({"type": "INTEGER", "nullable": true, "title": "Limit", "default": null})
        );
    }
}

#[test]
fn multi_branch_unions_become_any_of_with_nullable_in_each_branch() {
    let schema = json!({
        "oneOf": [{"type": "string"}, {"type": "array", "items": {"type": "string"}}, {"type": "null"}],
        "description": "one or many"
    });
    assert_eq!(
        openapi(&schema),
        json!({
            "description": "one or many",
            "anyOf": [
                {"type": "STRING", "nullable": true},
                {"type": "ARRAY", "items": {"type": "STRING"}, "nullable": true}
            ]
        })
    );
}

#[test]
fn several_non_null_types_become_any_of() {
    let out = openapi(&json!({"type": ["string", "integer", "null"], "minimum": 1}));
    assert_eq!(
        out,
        json!({"anyOf": [
            {"type": "STRING", "nullable": true},
            {"type": "INTEGER", "minimum": 1, "nullable": true}
        ]})
    );
    // number covers integer.
    assert_eq!(
        openapi(&json!({"type": ["integer", "number"]})),
        json!({"type": "NUMBER"})
    );
}

#[test]
fn union_siblings_are_distributed_into_the_branches() {
    let schema = json!({
        "type": "object",
        "properties": {"a": {"type": "string"}, "b": {"type": "string"}},
        "anyOf": [{"required": ["a"]}, {"required": ["b"]}],
        "description": "a or b"
    });
    let out = openapi(&schema);
    assert_eq!(out["description"], json!("a or b"));
    let branches = out["anyOf"].as_array().unwrap();
    assert_eq!(branches.len(), 2);
    assert_eq!(branches[0]["required"], json!(["a"]));
    assert_eq!(branches[1]["required"], json!(["b"]));
    assert!(branches.iter().all(|b| b["type"] == json!("OBJECT")));
    assert!(branches[0].get("description").is_none());
}

#[test]
fn all_of_merges_properties_required_and_first_annotations() {
    let schema = json!({
        "allOf": [
            {"type": "object", "description": "first", "properties": {"a": {"type": "string"}}, "required": ["a"]},
            {"type": "object", "description": "second", "properties": {"b": {"type": "integer"}, "a": {"maxLength": 4}}, "required": ["b"]}
        ]
    });
    assert_eq!(
        openapi(&schema),
        json!({
            "type": "OBJECT",
            "description": "first",
            "properties": {"a": {"type": "STRING", "maxLength": 4}, "b": {"type": "INTEGER"}},
            "required": ["a", "b"]
        })
    );
}

#[test]
fn contradictory_types_admit_nothing() {
    let schema = json!({
        "type": "object",
        "properties": {"a": {"allOf": [{"type": "string"}, {"type": "integer"}]}, "b": {"type": "boolean"}},
        "required": ["a", "b"]
    });
    let out = openapi(&schema);
    assert_eq!(out["properties"], json!({"b": {"type": "BOOLEAN"}}));
    assert_eq!(out["required"], json!(["b"]));
}

// --- const and enum -------------------------------------------------------------------------

#[test]
fn string_const_becomes_a_one_value_enum() {
    assert_eq!(
        openapi(&json!({"const": "circle"})),
        json!({"type": "STRING", "enum": ["circle"]})
    );
    assert_eq!(
        openapi(&json!({"type": "string", "const": "circle"})),
        json!({"type": "STRING", "enum": ["circle"]})
    );
}

#[test]
fn non_string_consts_keep_their_type_and_go_to_the_description() {
    assert_eq!(
        openapi(&json!({"const": true, "description": "Confirm."})),
        json!({"type": "BOOLEAN", "description": "Confirm. (must be true)"})
    );
    assert_eq!(
        openapi(&json!({"const": 3})),
        json!({"type": "INTEGER", "description": "must be 3"})
    );
    assert_eq!(
        openapi(&json!({"type": "string", "const": 3})),
        json!({"type": "STRING", "enum": ["3"]})
    );
}

#[test]
fn integer_enums_are_described_and_string_typed_ones_stringified() {
    assert_eq!(
        openapi(&json!({"type": "integer", "enum": [1, 2, 3], "description": "Priority."})),
        json!({"type": "INTEGER", "description": "Priority. (one of: 1, 2, 3)"})
    );
    assert_eq!(
        openapi(&json!({"enum": [200, 404]})),
        json!({"type": "INTEGER", "description": "one of: 200, 404"})
    );
    assert_eq!(
        openapi(&json!({"type": "string", "enum": ["a", 1, true]})),
        json!({"type": "STRING", "enum": ["a", "1", "true"]})
    );
    // Mixed, untyped, with a string: string-like.
    assert_eq!(
        openapi(&json!({"enum": ["auto", 0]})),
        json!({"type": "STRING", "enum": ["auto", "0"]})
    );
}

#[test]
fn null_inside_an_enum_becomes_nullable() {
    assert_eq!(
        openapi(&json!({"type": ["string", "null"], "enum": ["low", "high", null]})),
        json!({"type": "STRING", "enum": ["low", "high"], "nullable": true})
    );
    // A string type does not admit the null value.
    assert_eq!(
        openapi(&json!({"type": "string", "enum": ["low", null]})),
        json!({"type": "STRING", "enum": ["low"]})
    );
}

// --- formats, bounds, annotations ---------------------------------------------------------

#[test]
fn formats_gemini_does_not_allow_move_to_the_description() {
    assert_eq!(
        openapi(&json!({"type": "string", "format": "uri", "description": "Link"})),
        json!({"type": "STRING", "description": "Link (format: uri)"})
    );
    assert_eq!(
        openapi(&json!({"type": "string", "format": "date-time"})),
        json!({"type": "STRING", "format": "date-time"})
    );
    assert_eq!(
        openapi(&json!({"type": "integer", "format": "int64"})),
        json!({"type": "INTEGER", "format": "int64"})
    );
    assert_eq!(
        openapi(&json!({"type": "number", "format": "int32"})),
        json!({"type": "NUMBER", "description": "format: int32"})
    );
    assert_eq!(
        openapi(&json!({"type": "boolean", "format": "flag"})),
        json!({"type": "BOOLEAN"})
    );
}

#[test]
fn title_is_kept_and_the_first_example_becomes_example() {
    assert_eq!(
        openapi(&json!({"type": "string", "title": "Day", "examples": ["2025-01-31", "x"]})),
        json!({"type": "STRING", "title": "Day", "example": "2025-01-31"})
    );
}

#[test]
fn exclusive_bounds_are_exact_for_integers_and_described_for_numbers() {
    assert_eq!(
        openapi(&json!({"type": "integer", "exclusiveMinimum": 0, "exclusiveMaximum": 100})),
        json!({"type": "INTEGER", "minimum": 1, "maximum": 99})
    );
    assert_eq!(
        openapi(&json!({"type": "number", "exclusiveMinimum": 0})),
        json!({"type": "NUMBER", "minimum": 0, "description": "greater than 0"})
    );
    // Draft 4: a boolean that makes `minimum` exclusive.
    assert_eq!(
        openapi(&json!({"type": "integer", "minimum": 5, "exclusiveMinimum": true})),
        json!({"type": "INTEGER", "minimum": 6})
    );
    // The tighter of the two wins.
    assert_eq!(
        openapi(&json!({"type": "integer", "minimum": 10, "exclusiveMinimum": 0})),
        json!({"type": "INTEGER", "minimum": 10})
    );
    assert_eq!(
        openapi(&json!({"type": "integer", "exclusiveMaximum": 2.5})),
        json!({"type": "INTEGER", "maximum": 2.0})
    );
}

#[test]
fn unsupported_keywords_are_dropped() {
    let schema = json!({
        "$schema": "http://json-schema.org/draft-07/schema#",
        "$id": "urn:x",
        "$comment": "c",
        "type": "object",
        "properties": {"a": {"type": "string", "readOnly": true, "deprecated": true, "not": {"const": "x"}}},
        "additionalProperties": false,
        "patternProperties": {"^x-": {}},
        "dependencies": {"a": ["b"]},
        "if": {"required": ["a"]},
        "then": {"required": ["b"]},
        "else": {},
        "unevaluatedProperties": false
    });
    assert_eq!(
        openapi(&schema),
        json!({"type": "OBJECT", "properties": {"a": {"type": "STRING"}}})
    );
}

#[test]
fn unique_items_and_multiple_of_are_described() {
    assert_eq!(
        openapi(
            &json!({"type": "array", "items": {"type": "integer", "multipleOf": 5}, "uniqueItems": true})
        ),
        json!({"type": "ARRAY", "items": {"type": "INTEGER", "description": "a multiple of 5"}, "description": "items must be unique"})
    );
}

// --- degrading ------------------------------------------------------------------------------

#[test]
fn free_form_objects_become_json_encoded_strings_keeping_the_description() {
    for schema in [
        json!({"type": "object", "description": "Body."}),
        json!({"type": "object", "additionalProperties": true, "description": "Body."}),
        json!({"type": "object", "additionalProperties": {"type": "string"}, "description": "Body."}),
        json!({"type": "object", "properties": {}, "description": "Body."}),
    ] {
        assert_eq!(
            openapi(&schema),
            json!({"type": "STRING", "description": "Body. (a JSON object, JSON-encoded as a string)"}),
            "{schema}"
        );
    }
}

#[test]
fn untyped_schemas_become_json_encoded_strings() {
    for schema in [json!({}), json!(true), json!({"description": "Anything"})] {
        let out = openapi(&schema);
        assert_eq!(out["type"], json!("STRING"));
        assert!(description(&out).contains("any JSON value, JSON-encoded"));
    }
    let out = openapi(&json!({"type": "object", "properties": {"v": {"default": {"a": 1}}}}));
    assert_eq!(out["properties"]["v"]["default"], json!("{\"a\":1}"));
}

#[test]
fn untyped_schemas_with_typed_keywords_get_the_implied_type() {
    assert_eq!(
        openapi(&json!({"properties": {"a": {"maxLength": 2}}})),
        json!({"type": "OBJECT", "properties": {"a": {"type": "STRING", "maxLength": 2}}})
    );
    assert_eq!(
        openapi(&json!({"items": {"minimum": 0}})),
        json!({"type": "ARRAY", "items": {"type": "NUMBER", "minimum": 0}})
    );
}

#[test]
fn arrays_without_items_get_json_encoded_items() {
    let out = openapi(&json!({"type": "array"}));
    assert_eq!(out["items"]["type"], json!("STRING"));
}

#[test]
fn tuples_become_a_union_of_their_positions() {
    let schema = json!({
        "type": "array",
        "prefixItems": [{"type": "number"}, {"type": "number"}],
        "minItems": 2,
        "maxItems": 2
    });
    assert_eq!(
        openapi(&schema),
        json!({"type": "ARRAY", "items": {"type": "NUMBER"}, "minItems": 2, "maxItems": 2})
    );
    let mixed = json!({"type": "array", "items": [{"type": "string"}, {"type": "integer"}], "additionalItems": false});
    assert_eq!(
        openapi(&mixed)["items"],
        json!({"anyOf": [{"type": "STRING"}, {"type": "INTEGER"}]})
    );
}

#[test]
fn required_and_property_ordering_are_filtered_to_existing_properties() {
    let schema = json!({
        "type": "object",
        "properties": {"a": {"type": "string"}, "b": {"type": "string"}},
        "required": ["a", "ghost", "a"],
        "propertyOrdering": ["b", "ghost", "a"]
    });
    let out = openapi(&schema);
    assert_eq!(out["required"], json!(["a"]));
    assert_eq!(out["propertyOrdering"], json!(["b", "a"]));
}

#[test]
fn types_are_upper_cased_and_unknown_ones_ignored() {
    assert_eq!(
        openapi(&json!({"type": "STRING"})),
        json!({"type": "STRING"})
    );
    assert_eq!(
        openapi(&json!({"type": "Boolean"})),
        json!({"type": "BOOLEAN"})
    );
    let out = openapi(&json!({"type": "any"}));
    assert_eq!(out["type"], json!("STRING"));
}

// --- limits ---------------------------------------------------------------------------------

#[test]
fn deep_nesting_is_cut_off_not_a_stack_overflow() {
    let mut schema = json!({"type": "string"});
    for _ in 0..500 {
        schema = json!({"type": "object", "properties": {"x": schema}, "required": ["x"]});
    }
    let out = openapi(&schema);
    assert!(nesting(&out, &["properties", "x"]) <= MAX_DEPTH + 1);
    assert!(to_json_schema(&schema).unwrap_err().contains("levels deep"));
    let mut all_of = json!({"type": "string"});
    for _ in 0..500 {
        all_of = json!({"allOf": [all_of]});
    }
    assert!(to_openapi(&all_of).unwrap_err().contains("levels deep"));
}

#[test]
fn exponential_ref_fan_out_hits_the_size_cap() {
    let mut defs = Map::new();
    defs.insert("D0".to_owned(), json!({"type": "string"}));
    for i in 1..40 {
        let below = format!("#/$defs/D{}", i - 1);
        defs.insert(
            format!("D{i}"),
            json!({"type": "object", "properties": {"l": {"$ref": below}, "r": {"$ref": below}}}),
        );
    }
    let schema = json!({"$ref": "#/$defs/D39", "$defs": defs});
    assert!(to_openapi(&schema).unwrap_err().contains("too large"));
    // The JSON Schema dialect keeps `$ref`s, so it has nothing to blow up.
    assert!(to_json_schema(&schema).is_ok());
}

/// Found by the property tests: three levels of ten `$ref`s to a long description stay well
/// under the subschema cap (1,111 nodes) yet copied the description a thousand times, 22 KB
/// of schema into 20 MB of `OpenAPI`. The output is now capped at a multiple of the input.
#[test]
fn inlining_a_long_description_many_times_hits_the_growth_cap() {
    let ten = |target: &str| {
        let properties: Map<String, Value> = (0..10)
            .map(|i| (format!("p{i}"), json!({"$ref": target})))
            .collect();
        json!({"type": "object", "properties": properties})
    };
    let laughs = json!({
        "$defs": {
            "a0": {"type": "string", "description": "x".repeat(10_000)},
            "a1": ten("#/$defs/a0"),
            "a2": ten("#/$defs/a1"),
            "a3": ten("#/$defs/a2"),
        },
        "$ref": "#/$defs/a3",
    });
    let err = to_openapi(&laughs).unwrap_err();
    assert!(err.contains("64 times its own size"), "{err}");
    assert!(function_parameters_openapi(&laughs).is_err());
    // Two levels of it (a hundred copies of a short description) inline: it is the growth
    // that is refused, not the shape.
    let mut small = laughs.clone();
    small["$defs"]["a0"]["description"] = json!("a word");
    small["$ref"] = json!("#/$defs/a2");
    let out = to_openapi(&small).unwrap();
    assert_eq!(nesting(&out, &["properties", "p0"]), 2);
    // Ten uses of one description are fine however long it is.
    let once = json!({"$defs": {"a0": {"type": "string", "description": "x".repeat(10_000)}, "a1": ten("#/$defs/a0")}, "$ref": "#/$defs/a1"});
    assert!(to_openapi(&once).is_ok());
}

#[test]
fn non_schemas_are_errors() {
    assert!(
        to_openapi(&json!("string"))
            .unwrap_err()
            .contains("JSON object")
    );
    assert!(to_openapi(&json!(false)).is_err());
    assert!(
        to_json_schema(&json!([1]))
            .unwrap_err()
            .contains("not an array")
    );
    assert!(
        to_openapi(&json!({"properties": {"a": 5}}))
            .unwrap_err()
            .contains("not a number")
    );
    assert!(
        to_openapi(&json!({"anyOf": {}}))
            .unwrap_err()
            .contains("must be an array")
    );
}

// --- function parameters ------------------------------------------------------------------

#[test]
fn parameters_without_properties_are_none() {
    for schema in [
        json!({"type": "object", "properties": {}}),
        json!({"type": "object"}),
        json!({}),
        json!({"type": "object", "additionalProperties": true}),
    ] {
        assert_eq!(
            function_parameters_openapi(&schema).unwrap(),
            None,
            "{schema}"
        );
    }
}

#[test]
fn parameters_must_be_an_object() {
    let err = function_parameters_openapi(&json!({"type": "string"})).unwrap_err();
    assert!(err.contains("must be an object schema"), "{err}");
    let err = function_parameters_json_schema(&json!({"type": "array"})).unwrap_err();
    assert!(err.contains("must be an object schema"), "{err}");
    assert_eq!(
        function_parameters_json_schema(&json!({"properties": {}})).unwrap(),
        json!({"type": "object", "properties": {}})
    );
    assert_eq!(
        function_parameters_json_schema(&json!({"type": ["object", "null"]})).unwrap(),
        json!({"type": "object"})
    );
    let nullable = json!({"type": ["object", "null"], "properties": {"a": {"type": "string"}}});
    assert_eq!(
        function_parameters_openapi(&nullable).unwrap(),
        Some(json!({"type": "OBJECT", "properties": {"a": {"type": "STRING"}}}))
    );
}

#[test]
fn parameters_that_are_a_union_of_objects_merge_into_one() {
    let schema = json!({
        "description": "A shape.",
        "oneOf": [
            {"type": "object", "properties": {"kind": {"const": "circle"}, "r": {"type": "number"}}, "required": ["kind", "r"]},
            {"type": "object", "properties": {"kind": {"const": "square"}, "side": {"type": "number"}}, "required": ["kind", "side"]}
        ]
    });
    assert_eq!(
        function_parameters_openapi(&schema).unwrap(),
        Some(json!({
            "type": "OBJECT",
            "description": "A shape.",
            "properties": {
                "kind": {"type": "STRING", "enum": ["circle", "square"]},
                "r": {"type": "NUMBER"},
                "side": {"type": "NUMBER"}
            },
            "required": ["kind"]
        }))
    );
}

// --- enum_only ------------------------------------------------------------------------------

#[test]
fn enum_only_accepts_bare_string_enums() {
    let values = Some(vec!["a".to_owned(), "b".to_owned()]);
    assert_eq!(
        enum_only(&json!({"type": "string", "enum": ["a", "b"]})),
        values
    );
    assert_eq!(
        enum_only(&json!({"enum": ["a", "b"], "title": "T"})),
        values
    );
    assert_eq!(
        enum_only(&json!({"$ref": "#/$defs/E", "$defs": {"E": {"enum": ["a", "b"]}}})),
        values
    );
    assert_eq!(
        enum_only(&json!({"const": "a"})),
        Some(vec!["a".to_owned()])
    );
}

#[test]
fn enum_only_rejects_anything_more() {
    for schema in [
        json!({"type": "integer", "enum": [1, 2]}),
        json!({"enum": ["a", 1]}),
        json!({"enum": []}),
        json!({"type": ["string", "null"], "enum": ["a", null]}),
        json!({"type": "string", "enum": ["a"], "maxLength": 1}),
        json!({"type": "object", "properties": {"a": {"enum": ["x"]}}}),
        json!({"type": "string"}),
        json!("a"),
    ] {
        assert_eq!(enum_only(&schema), None, "{schema}");
    }
}

// --- to_json_schema -------------------------------------------------------------------------

#[test]
fn valid_json_schemas_pass_unchanged() {
    let schema = json!({
        "type": "object",
        "properties": {
            "a": {"$ref": "#/$defs/A", "description": "d", "default": "x"},
            "b": {"type": ["string", "null"], "format": "uri"},
            "c": {"anyOf": [{"type": "integer"}, {"type": "null"}]}
        },
        "required": ["a"],
        "additionalProperties": false,
        "$defs": {"A": {"type": "string", "enum": ["x", "y"]}}
    });
    assert_eq!(to_json_schema(&schema).unwrap(), schema);
}

#[test]
fn json_schema_drops_schema_id_and_comment() {
    let schema = json!({
        "$schema": "http://json-schema.org/draft-07/schema#",
        "$id": "urn:x",
        "type": "object",
        "properties": {"a": {"type": "string", "$comment": "c"}}
    });
    assert_eq!(
        to_json_schema(&schema).unwrap(),
        json!({"type": "object", "properties": {"a": {"type": "string"}}})
    );
}

#[test]
fn json_schema_inlines_a_root_ref() {
    let schema = json!({
        "$ref": "#/definitions/Contact",
        "definitions": {"Contact": {"type": "object", "properties": {"next": {"$ref": "#/definitions/Contact"}}}},
        "$schema": "http://json-schema.org/draft-07/schema#"
    });
    let out = to_json_schema(&schema).unwrap();
    assert_eq!(out["type"], json!("object"));
    assert_eq!(
        out["properties"]["next"],
        json!({"$ref": "#/definitions/Contact"})
    );
    assert!(out.get("$ref").is_none());
    let looping = json!({"$ref": "#"});
    assert!(to_json_schema(&looping).unwrap_err().contains("itself"));
}

#[test]
fn json_schema_wraps_refs_with_other_siblings() {
    let schema = json!({
        "type": "object",
        "properties": {
            "a": {"$ref": "#/$defs/A", "title": "A", "description": "d"},
            "b": {"$ref": "#/$defs/A", "anyOf": [{"maxLength": 3}]}
        },
        "$defs": {"A": {"type": "string"}}
    });
    let out = to_json_schema(&schema).unwrap();
    assert_eq!(
        out["properties"]["a"],
        json!({"anyOf": [{"$ref": "#/$defs/A"}], "title": "A", "description": "d"})
    );
    assert_eq!(
        out["properties"]["b"],
        json!({"allOf": [{"anyOf": [{"$ref": "#/$defs/A"}]}, {"anyOf": [{"maxLength": 3}]}]})
    );
    assert!(json_schema_violations(&out).is_empty());
}

#[test]
fn json_schema_normalises_types_and_boolean_subschemas() {
    let schema = json!({
        "type": "OBJECT",
        "properties": {
            "a": {"type": ["String", "NULL", "whatever"]},
            "b": {"type": "any"},
            "c": true,
            "d": false
        },
        "additionalProperties": true
    });
    assert_eq!(
        to_json_schema(&schema).unwrap(),
        json!({
            "type": "object",
            "properties": {"a": {"type": ["string", "null"]}, "b": {}, "c": {}, "d": {"not": {}}},
            "additionalProperties": true
        })
    );
}

#[test]
fn json_schema_adds_object_type_to_an_untyped_root_with_properties() {
    assert_eq!(
        to_json_schema(&json!({"properties": {"a": {}}})).unwrap(),
        json!({"type": "object", "properties": {"a": {}}})
    );
    assert_eq!(to_json_schema(&json!(true)).unwrap(), json!({}));
    assert_eq!(
        to_json_schema(&json!({"anyOf": [{"type": "string"}]})).unwrap(),
        json!({"anyOf": [{"type": "string"}]})
    );
}

#[test]
fn refs_inside_non_schema_values_are_not_followed() {
    let schema = json!({
        "type": "object",
        "properties": {"$ref": {"type": "string"}},
        "default": {"$ref": "#/nowhere"},
        "enum": [{"$ref": "#/nowhere"}]
    });
    assert!(to_json_schema(&schema).is_ok());
}
