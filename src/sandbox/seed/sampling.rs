//! Sampling helpers shared by the tables: weighted and Zipf-like picks from precomputed cumulative
//! weights, and the `[section]` text format of the embedded data files.

use rand::RngExt;
use rand_chacha::ChaCha8Rng;

/// Exponent of the Zipf-like rank weights: 1.0 would make the top name of a 100-name list about
/// 19 % of it, which is more skewed than real name frequencies; 0.8 keeps common names common
/// (namesakes occur) without a handful of names swamping everything.
const ZIPF_EXPONENT: f64 = 0.8;

/// Cumulative weights over `n` items; a pick is one uniform draw and a binary search.
#[derive(Debug, Clone)]
pub(crate) struct Cumulative {
    ends: Vec<f64>,
}

impl Cumulative {
    /// Items weighted as given (weights must be positive).
    pub(crate) fn weighted(weights: impl IntoIterator<Item = f64>) -> Self {
        let mut total = 0.0;
        let ends = weights
            .into_iter()
            .map(|w| {
                total += w;
                total
            })
            .collect();
        Cumulative { ends }
    }

    /// `n` items ranked most common first, weight of rank r proportional to 1/(r+1)^0.8.
    pub(crate) fn zipf(n: usize) -> Self {
        Self::weighted((0..n).map(|rank| 1.0 / ((rank + 1) as f64).powf(ZIPF_EXPONENT)))
    }

    /// Index of a random item.
    pub(crate) fn pick(&self, rng: &mut ChaCha8Rng) -> usize {
        let total = *self.ends.last().expect("a table is never empty");
        let draw = rng.random::<f64>() * total;
        self.ends
            .partition_point(|&end| end <= draw)
            .min(self.ends.len() - 1)
    }
}

/// Picks from a constant `(item, weight)` table.
pub(crate) fn pick_weighted<T: Copy>(rng: &mut ChaCha8Rng, table: &[(T, u32)]) -> T {
    let total: u32 = table.iter().map(|(_, w)| w).sum();
    let mut draw = rng.random_range(0..total);
    for &(item, weight) in table {
        if draw < weight {
            return item;
        }
        draw -= weight;
    }
    table.last().expect("a table is never empty").0
}

/// Splits an embedded data file into `[section]` blocks of non-empty, non-comment lines.
pub(crate) fn sections(text: &'static str) -> Vec<(&'static str, Vec<&'static str>)> {
    let mut out: Vec<(&'static str, Vec<&'static str>)> = Vec::new();
    for line in text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
    {
        if let Some(name) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
            out.push((name, Vec::new()));
        } else if let Some((_, lines)) = out.last_mut() {
            lines.push(line);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    #[test]
    fn zipf_prefers_low_ranks_but_reaches_the_tail() {
        let zipf = Cumulative::zipf(50);
        let mut rng = ChaCha8Rng::seed_from_u64(1);
        let mut counts = [0usize; 50];
        for _ in 0..20_000 {
            counts[zipf.pick(&mut rng)] += 1;
        }
        assert!(
            counts[0] > 3 * counts[20],
            "rank 0 {} vs rank 20 {}",
            counts[0],
            counts[20]
        );
        assert!(counts[49] > 0, "the last rank is never drawn");
    }

    #[test]
    fn sections_skip_comments_and_blank_lines() {
        let parsed = sections("# c\n[a]\nx\n\n y \n[b]\nz\n");
        assert_eq!(parsed, vec![("a", vec!["x", "y"]), ("b", vec!["z"])]);
    }
}
