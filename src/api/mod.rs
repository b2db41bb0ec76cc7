//! The one HTTP layer (auth, rate limit, retry, redaction) and the GHL and BulkSMS clients on it.
