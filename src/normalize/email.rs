//! Emails: trimmed and lower-cased for display, and a match key without `+tag` (and, for Gmail,
//! without dots) for comparison.

/// An email as compared.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EmailKey {
    /// Trimmed and lower-cased.
    pub address: String,
    /// `+tag` dropped and, for Gmail, dots dropped and googlemail folded to gmail.
    pub match_key: String,
    /// Where the local part of `match_key` ends (its `@`). The parts are read from the key
    /// rather than stored: a table of ten million emails is twenty million fewer strings.
    local_len: usize,
}

impl EmailKey {
    /// The local part of `match_key`.
    pub fn local(&self) -> &str {
        &self.match_key[..self.local_len]
    }

    /// The domain (googlemail folded to gmail).
    pub fn domain(&self) -> &str {
        &self.match_key[self.local_len + 1..]
    }
}

/// [`EmailKey::local`] of a match key's text: what comes before its last `@` (the domain has
/// none).
pub fn local_of_match_key(match_key: &str) -> &str {
    match_key
        .rsplit_once('@')
        .map_or(match_key, |(local, _)| local)
}

/// Hashed by the address alone: every other part is read from it, so equal addresses are equal
/// keys, and a million of them are hashed once each while the table is encoded.
impl std::hash::Hash for EmailKey {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.address.hash(state);
    }
}

/// Domains that are shared by unrelated people: an equal domain there says nothing.
pub fn is_free_mail(domain: &str) -> bool {
    matches!(
        domain,
        "gmail.com"
            | "googlemail.com"
            | "yahoo.com"
            | "outlook.com"
            | "hotmail.com"
            | "icloud.com"
            | "aol.com"
            | "protonmail.com"
            | "gmx.de"
            | "web.de"
            | "orange.fr"
            | "btinternet.com"
            | "live.com"
            | "msn.com"
            | "me.com"
            | "mail.com"
            | "yandex.ru"
            | "qq.com"
            | "163.com"
    )
}

/// Parses an email; `None` when it has no `@`.
pub fn email(raw: &str) -> Option<EmailKey> {
    let address = raw.trim().to_lowercase();
    let (local, domain) = address.rsplit_once('@')?;
    if local.is_empty() || domain.is_empty() {
        return None;
    }
    let domain = if domain == "googlemail.com" {
        "gmail.com"
    } else {
        domain
    };
    let local = local.split('+').next().unwrap_or(local);
    let mut match_key = String::with_capacity(local.len() + 1 + domain.len());
    if domain == "gmail.com" {
        match_key.extend(local.chars().filter(|c| *c != '.'));
    } else {
        match_key.push_str(local);
    }
    let local_len = match_key.len();
    match_key.push('@');
    match_key.push_str(domain);
    Some(EmailKey {
        match_key,
        local_len,
        address,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn email_match_keys_drop_tags_and_gmail_dots_only() {
        let a = email(" Jane.Doe+news@GMail.com ").expect("email");
        assert_eq!(a.address, "jane.doe+news@gmail.com");
        assert_eq!(a.match_key, "janedoe@gmail.com");
        let b = email("jane.doe@googlemail.com").expect("email");
        assert_eq!(a.match_key, b.match_key);
        let c = email("jane.doe@acme.com").expect("email");
        assert_eq!(
            c.match_key, "jane.doe@acme.com",
            "dots matter outside Gmail"
        );
        assert!(email("not-an-email").is_none());
    }
}
