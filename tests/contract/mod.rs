//! A small OpenAPI checker for contract tests: resolves `$ref`s of a spec and compares an answer
//! with a schema — JSON types of every declared property present, and which declared properties
//! the answer lacks.
#![allow(dead_code)]

use serde_json::Value;

/// An OpenAPI document.
pub struct Spec {
    pub doc: Value,
}

impl Spec {
    /// Loads a JSON spec relative to the crate (the specs live in `../shared/api`).
    pub fn load_json(relative: &str) -> Spec {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(relative);
        let text = std::fs::read_to_string(&path)
            .unwrap_or_else(|e| panic!("reading spec {}: {e}", path.display()));
        Spec {
            doc: serde_json::from_str(&text).expect("spec is JSON"),
        }
    }

    fn resolve<'a>(&'a self, schema: &'a Value) -> &'a Value {
        match schema.get("$ref").and_then(Value::as_str) {
            Some(reference) => {
                let mut cur = &self.doc;
                for part in reference.trim_start_matches("#/").split('/') {
                    cur = &cur[part];
                }
                self.resolve(cur)
            }
            None => schema,
        }
    }

    /// The response schema of an operation and status.
    pub fn response_schema(&self, path: &str, method: &str, status: &str) -> &Value {
        let op = &self.doc["paths"][path][method];
        assert!(op.is_object(), "spec has no {method} {path}");
        let response = &op["responses"][status];
        assert!(
            response.is_object(),
            "spec of {method} {path} has no {status} answer (has: {:?})",
            op["responses"]
                .as_object()
                .map(|o| o.keys().collect::<Vec<_>>())
        );
        self.resolve(&response["content"]["application/json"]["schema"])
    }

    /// Type mismatches between `value` and `schema` (empty = conforms).
    pub fn type_errors(&self, value: &Value, schema: &Value, at: &str) -> Vec<String> {
        let schema = self.resolve(schema);
        let mut errors = Vec::new();
        if value.is_null() {
            return errors;
        }
        let declared = schema.get("type").and_then(Value::as_str);
        let ok = match (declared, value) {
            (None, _) => true,
            (Some("string"), Value::String(_)) => true,
            (Some("number"), Value::Number(_)) => true,
            (Some("integer"), Value::Number(n)) => n.is_i64() || n.is_u64(),
            (Some("boolean"), Value::Bool(_)) => true,
            (Some("array"), Value::Array(_)) => true,
            (Some("object"), Value::Object(_)) => true,
            _ => false,
        };
        if !ok {
            errors.push(format!("{at}: expected {declared:?}, got {value}"));
            return errors;
        }
        if let (Some(props), Value::Object(map)) =
            (schema.get("properties").and_then(Value::as_object), value)
        {
            for (key, sub) in props {
                if let Some(v) = map.get(key) {
                    errors.extend(self.type_errors(v, sub, &format!("{at}.{key}")));
                }
            }
        }
        if let (Some(items), Value::Array(list)) = (schema.get("items"), value) {
            for (i, v) in list.iter().enumerate().take(5) {
                errors.extend(self.type_errors(v, items, &format!("{at}[{i}]")));
            }
        }
        errors
    }

    /// Declared properties of `schema` that `value` (an object) does not carry.
    pub fn missing(&self, value: &Value, schema: &Value) -> Vec<String> {
        let schema = self.resolve(schema);
        let Some(props) = schema.get("properties").and_then(Value::as_object) else {
            return Vec::new();
        };
        props
            .keys()
            .filter(|k| value.get(k.as_str()).is_none())
            .cloned()
            .collect()
    }

    /// The schema of property `key` of `schema`.
    pub fn property<'a>(&'a self, schema: &'a Value, key: &str) -> &'a Value {
        self.resolve(&self.resolve(schema)["properties"][key])
    }
}
