//! Record ids and random instants.

use chrono::{DateTime, Duration, Utc};
use rand::RngExt;
use rand_chacha::ChaCha8Rng;

const ID_ALPHABET: &[u8; 62] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

/// A GHL-style id: 20 characters of `[0-9A-Za-z]`.
pub(crate) fn ghl_id(rng: &mut ChaCha8Rng) -> String {
    // 62^10 < 2^64, so one u64 yields ten characters.
    let mut out = String::with_capacity(20);
    for _ in 0..2 {
        let mut bits = rng.random::<u64>();
        for _ in 0..10 {
            out.push(ID_ALPHABET[(bits % 62) as usize] as char);
            bits /= 62;
        }
    }
    out
}

/// A uniformly random instant in `[start, end]`, millisecond precision.
pub(crate) fn instant_between(
    start: DateTime<Utc>,
    end: DateTime<Utc>,
    rng: &mut ChaCha8Rng,
) -> DateTime<Utc> {
    let span = (end - start).num_milliseconds();
    if span <= 0 {
        return start;
    }
    start + Duration::milliseconds(rng.random_range(0..=span))
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    #[test]
    fn ghl_ids_are_twenty_alphanumerics() {
        let mut rng = ChaCha8Rng::seed_from_u64(1);
        let a = ghl_id(&mut rng);
        let b = ghl_id(&mut rng);
        assert_eq!(a.len(), 20);
        assert!(a.chars().all(|c| c.is_ascii_alphanumeric()));
        assert_ne!(a, b);
    }
}
