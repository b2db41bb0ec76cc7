//! Companies: names that look like a CRM's small-business customers, their email domains, and the
//! GHL business each may be linked to.

use super::names::NameTables;
use super::sampling::pick_weighted;
use rand::RngExt;
use rand_chacha::ChaCha8Rng;
use std::collections::HashSet;

const NAME_WORDS: &[&str] = &[
    "Summit",
    "Blue Ridge",
    "Pioneer",
    "Evergreen",
    "Bright",
    "Apex",
    "Golden Gate",
    "Lakeside",
    "Redwood",
    "Northstar",
    "Silver Oak",
    "Cornerstone",
    "Harbor",
    "Keystone",
    "Liberty",
    "Meridian",
    "Pinnacle",
    "Riverbend",
    "Sunrise",
    "Trailhead",
    "Urban",
    "Vista",
    "Westside",
    "Coastal",
    "Prairie",
    "Granite",
    "Maple Leaf",
    "Ironwood",
    "Clearwater",
    "Bluebird",
    "First Choice",
    "Premier",
    "Elite",
    "Heritage",
    "Hometown",
    "Metro",
    "Pacific",
    "Atlantic",
    "Lone Star",
    "Empire",
];

const INDUSTRIES: &[&str] = &[
    "Dental",
    "Roofing",
    "Realty",
    "Plumbing",
    "Fitness",
    "Law Group",
    "Insurance",
    "Auto Repair",
    "Marketing",
    "Consulting",
    "HVAC",
    "Landscaping",
    "Chiropractic",
    "Med Spa",
    "Construction",
    "Accounting",
    "Cleaning Services",
    "Pest Control",
    "Solar",
    "Mortgage",
    "Pet Grooming",
    "Bakery",
    "Photography",
    "Electric",
    "Painting",
    "Flooring",
    "Veterinary Clinic",
    "Physical Therapy",
    "Tutoring",
    "Catering",
];

const SUFFIXES: &[(&str, u32)] = &[
    ("", 40),
    (" LLC", 25),
    (" Inc.", 15),
    (" Co.", 8),
    (" Group", 7),
    (", LLC", 5),
];

const TLDS: &[(&str, u32)] = &[
    (".com", 80),
    (".net", 8),
    (".co", 5),
    (".biz", 2),
    (".us", 5),
];

/// A company some persons work for.
#[derive(Debug, Clone)]
pub(crate) struct Company {
    pub(crate) name: String,
    /// Email and website domain, unique among companies.
    pub(crate) domain: String,
    /// The GHL business record the company's contacts may point to.
    pub(crate) business_id: Option<String>,
}

/// Builds a pool of `count` companies with unique domains.
pub(crate) fn company_pool(
    count: usize,
    names: &NameTables,
    rng: &mut ChaCha8Rng,
    new_id: &mut impl FnMut(&mut ChaCha8Rng) -> String,
) -> Vec<Company> {
    let mut domains = HashSet::with_capacity(count);
    (0..count)
        .map(|_| {
            let origin = names.pick_origin(rng);
            let industry = INDUSTRIES[rng.random_range(0..INDUSTRIES.len())];
            let roll = rng.random_range(0..100);
            let (name, stem) = if roll < 50 {
                let word = NAME_WORDS[rng.random_range(0..NAME_WORDS.len())];
                (
                    format!("{word} {industry}{}", pick_weighted(rng, SUFFIXES)),
                    format!("{word}{industry}"),
                )
            } else if roll < 85 {
                let last = names.pick_last(origin, rng);
                (
                    format!("{last} {industry}{}", pick_weighted(rng, SUFFIXES)),
                    format!("{last}{industry}"),
                )
            } else if roll < 97 {
                // Partnerships are where commas end up inside a company name.
                let a = names.pick_last(origin, rng);
                let b = names.pick_last(origin, rng);
                let form = ["{a}, {b} & Co.", "{a} & {b} LLP", "{a} & {b} Associates"]
                    [rng.random_range(0..3)];
                (form.replace("{a}", a).replace("{b}", b), format!("{a}{b}"))
            } else {
                // A nickname in quotes, as people do type it.
                let (first, _) = names.pick_first(origin, rng);
                let adjective = ["Best", "Original", "Famous", "Real"][rng.random_range(0..4)];
                (
                    format!("{first}'s \"{adjective}\" {industry}"),
                    format!("{first}s{industry}"),
                )
            };
            let mut domain = super::names::email_token(&stem);
            domain.truncate(24);
            let tld = pick_weighted(rng, TLDS);
            let mut candidate = format!("{domain}{tld}");
            while !domains.insert(candidate.clone()) {
                candidate = format!("{domain}{}{tld}", rng.random_range(2..1_000));
            }
            let business_id = rng.random_bool(0.3).then(|| new_id(rng));
            Company {
                name,
                domain: candidate,
                business_id,
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    #[test]
    fn domains_are_unique_and_some_names_need_quoting() {
        let mut rng = ChaCha8Rng::seed_from_u64(9);
        let mut n = 0;
        let pool = company_pool(3_000, NameTables::get(), &mut rng, &mut |_| {
            n += 1;
            format!("b{n}")
        });
        let domains: HashSet<&str> = pool.iter().map(|c| c.domain.as_str()).collect();
        assert_eq!(domains.len(), pool.len());
        assert!(pool.iter().any(|c| c.name.contains(',')));
        assert!(pool.iter().any(|c| c.name.contains('"')));
        assert!(
            pool.iter()
                .all(|c| c.domain.is_ascii() && c.domain.contains('.'))
        );
    }
}
