//! `${NAME}` references in pipeline-file values, expanded from the environment while parsing, so
//! secrets stay out of files. A leaf: `config`, `api::config` and `secret` all use it.

use serde::Deserialize;

/// Serde adapter: a string field whose `${ENV}` references are expanded while parsing.
pub fn env_string<'de, D: serde::Deserializer<'de>>(deserializer: D) -> Result<String, D::Error> {
    let raw = String::deserialize(deserializer)?;
    expand_env(&raw).map_err(serde::de::Error::custom)
}

/// Expands `${NAME}` references from the environment; `$${` escapes a literal `${`.
pub fn expand_env(raw: &str) -> Result<String, String> {
    let mut out = String::with_capacity(raw.len());
    let mut rest = raw;
    while let Some(pos) = rest.find("${") {
        if rest[..pos].ends_with('$') {
            out.push_str(&rest[..pos - 1]);
            out.push_str("${");
            rest = &rest[pos + 2..];
            continue;
        }
        out.push_str(&rest[..pos]);
        let after = &rest[pos + 2..];
        let end = after
            .find('}')
            .ok_or_else(|| format!("unterminated ${{...}} in {raw:?}"))?;
        let name = &after[..end];
        let value =
            std::env::var(name).map_err(|_| format!("environment variable {name} is not set"))?;
        out.push_str(&value);
        rest = &after[end + 1..];
    }
    out.push_str(rest);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn env_references_expand_and_missing_ones_are_named() {
        // SAFETY of the test: the variable name is unique to this test.
        unsafe { std::env::set_var("CONTACTSYNC_TEST_SECRET", "s3cret") };
        assert_eq!(
            expand_env("a${CONTACTSYNC_TEST_SECRET}b").expect("set"),
            "as3cretb"
        );
        assert_eq!(expand_env("$${X}").expect("escaped"), "${X}");
        let err = expand_env("${CONTACTSYNC_SURELY_UNSET_VAR}").expect_err("unset");
        assert!(err.contains("CONTACTSYNC_SURELY_UNSET_VAR"));
    }
}
