//! End-to-end tests of the deduper: small tables through `run`, asserting on its clusters.
//! Over 600 lines because each case writes its small table out in full, beside its assertions.

use super::*;
use crate::matching::earlier_decisions::AcceptedPairs;
use crate::normalize;

fn contacts_model() -> MatchModel {
    let path =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("pipelines/models/contacts.toml");
    MatchModel::load(&path).expect("contacts model")
}

/// The columns of the guard tests' rows.
const CONTACT_COLUMNS: [&str; 6] = [
    "first_name",
    "last_name",
    "email",
    "phone",
    "city",
    "postal_code",
];

fn table(rows: &[[&str; 6]]) -> InputTable {
    let rows: Vec<&[&str]> = rows.iter().map(|r| &r[..]).collect();
    columns_table(&CONTACT_COLUMNS, &rows)
}

fn cluster_of(result: &DedupeResult, id: &str) -> String {
    result
        .assignments
        .iter()
        .find(|a| a.id == id)
        .map(|a| a.cluster_id.clone())
        .expect("assigned")
}

/// [`columns_table`] of rows built as owned strings.
fn owned_rows_table<const N: usize>(names: &[&str], rows: &[[String; N]]) -> InputTable {
    let borrowed: Vec<Vec<&str>> = rows
        .iter()
        .map(|r| r.iter().map(String::as_str).collect())
        .collect();
    let slices: Vec<&[&str]> = borrowed.iter().map(Vec::as_slice).collect();
    columns_table(names, &slices)
}

fn columns_table(names: &[&str], rows: &[&[&str]]) -> InputTable {
    InputTable {
        ids: (0..rows.len()).map(|i| format!("r{i}")).collect(),
        columns: names
            .iter()
            .enumerate()
            .map(|(c, name)| {
                let cells = rows
                    .iter()
                    .map(|r| (!r[c].is_empty()).then(|| r[c].to_string()))
                    .collect();
                (name.to_string(), cells)
            })
            .collect(),
    }
}

fn dedupe(input: InputTable) -> DedupeResult {
    run(
        &contacts_model(),
        input,
        normalize::region("US"),
        42,
        KeepPairs::Nothing,
    )
    .expect("dedupe")
}

/// Asserts no cluster of `result` holds rows of two people (`person` names each row's) and
/// returns how many clusters there are.
fn clusters_of_one_person_each(result: &DedupeResult, person: impl Fn(usize) -> usize) -> usize {
    let mut members: HashMap<&str, Vec<usize>> = HashMap::new();
    for (row, a) in result.assignments.iter().enumerate() {
        members.entry(a.cluster_id.as_str()).or_default().push(row);
    }
    for rows in members.values() {
        let people: std::collections::HashSet<usize> = rows.iter().map(|r| person(*r)).collect();
        assert_eq!(people.len(), 1, "rows {rows:?} merge different people");
    }
    members.len()
}

/// The share of matches `result` estimated among the pairs of the blocking rule `name`.
fn share_of_rule(result: &DedupeResult, name: &str) -> f64 {
    let rule = result
        .metrics
        .pairs_per_rule
        .iter()
        .position(|(n, _)| n == name)
        .expect("rule ran");
    result.parameters.lambda_per_rule[rule]
}

/// Ten common surnames, each with its own sound.
const SURNAMES: [&str; 10] = [
    "Smith", "Jones", "Brown", "Garcia", "Miller", "Davis", "Lopez", "Wilson", "Moore", "Clark",
];

#[test]
fn national_phones_are_read_in_each_records_country() {
    let names = ["first_name", "last_name", "phone", "city", "country"];
    let rows: &[&[&str]] = &[
        // One person in London, the number once national and once international.
        &["Olivia", "Hughes", "07911 123456", "London", "UK"],
        &["Olivia", "Hughes", "+44 7911 123456", "", ""],
        // Sydney: national mobile form with the country spelled out.
        &["Jack", "Nguyen", "0412 345 678", "Sydney", "Australia"],
        &["Jack", "Nguyen", "+61 412 345 678", "", "AU"],
        &["Tom", "Hart", "+1 415 555 0122", "Miami", "US"],
        &["Ann", "Lee", "+1 415 555 0111", "Denver", "US"],
        // A country no one can read: counted, and the number read in the default region.
        &["Eve", "Stone", "(303) 555 0199", "Denver", "Narnia"],
    ];
    let result = dedupe(columns_table(&names, rows));
    assert_eq!(result.metrics.unknown_country_rows, 1);
    let phone = result
        .table
        .fields
        .iter()
        .position(|f| f.name == "phone")
        .expect("phone field");
    assert_eq!(
        result.table.value(phone, 0).map(str::to_string),
        Some("+447911123456".to_string())
    );
    assert_eq!(
        result.table.value(phone, 2).map(str::to_string),
        Some("+61412345678".to_string())
    );
    assert_eq!(cluster_of(&result, "r0"), cluster_of(&result, "r1"));
    assert_eq!(cluster_of(&result, "r2"), cluster_of(&result, "r3"));
}

#[test]
fn full_names_in_the_first_name_field_are_split_only_where_the_last_name_is_empty() {
    let names = ["first_name", "last_name"];
    let rows: &[&[&str]] = &[
        &["Patricia Horton", ""],
        &["Horton, Patricia", ""],
        &["Mary Ann", "Smith"],
        &["Patricia", ""],
    ];
    let mut t = columns_table(&names, rows);
    assert_eq!(t.split_full_names("first_name", "last_name"), 2);
    let cells = |c: &str| -> Vec<Option<&str>> { t.columns[c].iter().collect() };
    assert_eq!(
        cells("first_name"),
        vec![
            Some("Patricia"),
            Some("Patricia"),
            Some("Mary Ann"),
            Some("Patricia")
        ]
    );
    assert_eq!(
        cells("last_name"),
        vec![Some("Horton"), Some("Horton"), Some("Smith"), None]
    );
}

#[test]
fn a_full_name_in_the_first_name_field_compares_as_the_same_name() {
    let names = ["first_name", "last_name", "email", "city"];
    let rows: &[&[&str]] = &[
        &["Patricia Horton", "", "", "Austin"],
        &["Patricia", "Horton", "pat.horton@gmail.com", "Austin"],
        &["Horton, Patricia", "", "", ""],
        &["Ann", "Lee", "ann.lee@gmail.com", "Denver"],
        &["Tom", "Hart", "tom.hart@gmail.com", "Miami"],
    ];
    let result = run(
        &contacts_model(),
        columns_table(&names, rows),
        normalize::region("US"),
        42,
        KeepPairs::AtLeast(0.0),
    )
    .expect("dedupe");
    let (first, last) = (0, 1);
    assert_eq!(result.table.fields[first].name, "first_name");
    assert_eq!(result.table.fields[last].name, "last_name");
    // Blocked together, and both names compare as identical.
    for (i, j) in [(0, 1), (0, 2), (1, 2)] {
        let pair = result
            .pairs
            .iter()
            .find(|p| (p.left, p.right) == (i, j))
            .unwrap_or_else(|| panic!("rows {i} and {j} are a candidate pair"));
        assert_eq!(
            (pair.levels[first], pair.levels[last]),
            (0, 0),
            "rows {i}, {j}"
        );
    }
}

#[test]
fn twins_and_gendered_forms_sharing_a_home_stay_apart() {
    let names = CONTACT_COLUMNS;
    let rows: &[&[&str]] = &[
        &[
            "Ethan",
            "Taylor",
            "ethantaylor58@yahoo.com",
            "(470) 698-1958",
            "Atlanta",
            "30376",
        ],
        &[
            "Evan",
            "Taylor",
            "etaylor@gmail.com",
            "470-698-1958",
            "Atlanta",
            "30376",
        ],
        &[
            "Mario",
            "Martinez",
            "mario.m@gmail.com",
            "323 374 1765",
            "Los Angeles",
            "90021",
        ],
        &[
            "María",
            "Martínez",
            "maria72@gmail.com",
            "323 374 1765",
            "Los Angeles",
            "90021",
        ],
        // A typo in a long name with the same phone and email is one person.
        &[
            "Jonathon",
            "Reyes",
            "jreyes@gmail.com",
            "212 555 0199",
            "New York",
            "10001",
        ],
        &[
            "Jonathan",
            "Reyes",
            "jreyes@gmail.com",
            "212-555-0199",
            "New York",
            "10001",
        ],
    ];
    let result = dedupe(columns_table(&names, rows));
    assert_ne!(cluster_of(&result, "r0"), cluster_of(&result, "r1"));
    assert_ne!(cluster_of(&result, "r2"), cluster_of(&result, "r3"));
    assert_eq!(cluster_of(&result, "r4"), cluster_of(&result, "r5"));
}

#[test]
fn a_junior_without_a_shared_email_stays_apart_from_his_father() {
    let rows = [
        // Father and son: one address and home phone, their own inboxes.
        [
            "Michael",
            "Morgan",
            "mike.morgan@gmail.com",
            "+14155550134",
            "Boston",
            "02118",
        ],
        [
            "Michael",
            "Morgan Jr.",
            "mmorgan.jr@yahoo.com",
            "+14155550134",
            "Boston",
            "02118",
        ],
        // One person, once with the suffix and once without, one email.
        [
            "Robert",
            "Lane Jr.",
            "rob.lane@gmail.com",
            "+14155550199",
            "Austin",
            "78701",
        ],
        [
            "Robert",
            "Lane",
            "rob.lane@gmail.com",
            "+14155550199",
            "Austin",
            "78701",
        ],
        [
            "Ann",
            "Lee",
            "ann.lee@gmail.com",
            "+14155550111",
            "Denver",
            "80202",
        ],
        [
            "Tom",
            "Hart",
            "tom.hart@gmail.com",
            "+14155550122",
            "Miami",
            "33101",
        ],
    ];
    let result = run(
        &contacts_model(),
        table(&rows),
        normalize::region("US"),
        42,
        KeepPairs::Nothing,
    )
    .expect("dedupe");
    assert_ne!(cluster_of(&result, "r0"), cluster_of(&result, "r1"));
    assert_eq!(cluster_of(&result, "r2"), cluster_of(&result, "r3"));
}

#[test]
fn namesakes_crowding_a_name_only_rule_are_not_taken_for_duplicates() {
    // 4,000 different people drawn from six first names and six surnames, with no place to
    // tell them apart, every one with an own email and phone; 60 of them entered twice with
    // the same phone and no email. The rules on names alone (names in either order, last
    // name + initial) hold about 450,000 namesake pairs against 60 duplicates.
    let names = ["first_name", "last_name", "email", "phone"];
    let surnames = ["Smith", "Jones", "Brown", "Garcia", "Miller", "Davis"];
    let firsts = ["James", "Mary", "Robert", "Linda", "Thomas", "Karen"];
    let mut state: u64 = 11;
    let mut next = |n: usize| {
        state = state
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        ((state >> 33) as usize) % n
    };
    let mut rows: Vec<[String; 4]> = Vec::new();
    for p in 0..4000 {
        let (f, s) = (firsts[next(6)], surnames[next(6)]);
        let row = [
            f.to_string(),
            s.to_string(),
            format!("{}.{}{p}@example.com", f.to_lowercase(), s.to_lowercase()),
            format!("+1 312 55{:05}", p),
        ];
        if p < 60 {
            let mut again = row.clone();
            again[2] = String::new();
            rows.push(again);
        }
        rows.push(row);
    }
    let result = dedupe(owned_rows_table(&names, &rows));
    let person = |row: usize| if row < 120 { row / 2 } else { row - 60 };
    let clusters = clusters_of_one_person_each(&result, person);
    assert_eq!(clusters, 4000, "the 60 entered twice are found");
    for name in ["names_any_order", "last_name_first_initial"] {
        assert!(
            share_of_rule(&result, name) < 0.05,
            "{name}: {:?}",
            result.parameters.lambda_per_rule
        );
    }
}

/// Runs the contacts model with every guard but the strangers guard off and a threshold
/// low enough that any shared phone or email is accepted, so a chain of such links would
/// join whoever it reaches.
fn dedupe_linking_everything(input: InputTable, strangers: &[&str]) -> DedupeResult {
    let mut model = contacts_model();
    model.threshold = 1e-6;
    model.cluster_min_probability = 0.0;
    model.conflict_fields.clear();
    model.generational_suffixes = false;
    model.stranger_fields = strangers.iter().map(|s| s.to_string()).collect();
    run(
        &model,
        input,
        normalize::region("US"),
        42,
        KeepPairs::Nothing,
    )
    .expect("dedupe")
}

#[test]
fn a_cluster_never_holds_two_records_differing_in_surname_phone_and_email() {
    let names = ["first_name", "last_name", "email", "phone"];
    let rows: &[&[&str]] = &[
        // One person, a second number on the second record.
        &["Michael", "Smith", "msmith@gmail.com", "+1 312 555 0101"],
        &["Michael", "Smith", "msmith@gmail.com", "+1 312 555 0202"],
        // A stranger at the office line the second record gave: nothing else in common
        // with the first.
        &[
            "Michael",
            "Bealing",
            "mbealing@yahoo.com",
            "+1 312 555 0202",
        ],
        // A married name with the same inbox is not refused: the email agrees.
        &["Anna", "Lee", "anna.k@gmail.com", "+1 415 555 0111"],
        &["Anna", "Kim", "anna.k@gmail.com", "+1 415 555 0999"],
    ];
    let strangers = ["last_name", "phone", "email"];
    let result = dedupe_linking_everything(columns_table(&names, rows), &strangers);
    assert_eq!(cluster_of(&result, "r0"), cluster_of(&result, "r1"));
    assert_ne!(cluster_of(&result, "r0"), cluster_of(&result, "r2"));
    assert_eq!(cluster_of(&result, "r3"), cluster_of(&result, "r4"));
    let refused: Vec<&Split> = result
        .splits
        .iter()
        .filter(|s| s.rule.starts_with(STRANGERS))
        .collect();
    assert!(!refused.is_empty(), "{:?}", result.splits);
    assert!(
        refused[0].rule.contains("last_name, phone and email"),
        "the reason names the fields: {:?}",
        refused[0]
    );
    assert_eq!(result.metrics.refused_strangers, refused.len() as u64);
    // Without the guard the chain joins all three.
    let result = dedupe_linking_everything(columns_table(&names, rows), &[]);
    assert_eq!(cluster_of(&result, "r0"), cluster_of(&result, "r2"));
}

#[test]
fn cluster_sizes_are_counted_by_size() {
    let names = ["first_name", "last_name", "email", "phone"];
    let firsts = ["Ada", "Ben", "Cal", "Dee", "Eli", "Fay", "Gus", "Hal"];
    let lasts = ["Reed", "Shaw", "Todd", "Vale", "West"];
    let mut rows: Vec<[String; 4]> = Vec::new();
    for (k, copies) in [(0, 3), (1, 2)] {
        for _ in 0..copies {
            rows.push([
                ["Ann", "Bob"][k].to_string(),
                ["Lee", "Ray"][k].to_string(),
                format!("{}@example.com", ["ann", "bob"][k]),
                format!("+1 312 555 010{k}"),
            ]);
        }
    }
    for (p, (f, l)) in firsts
        .iter()
        .flat_map(|f| lasts.iter().map(move |l| (f, l)))
        .enumerate()
    {
        rows.push([
            f.to_string(),
            l.to_string(),
            format!("{f}.{l}@example.com"),
            format!("+1 415 555 {:04}", 100 + p),
        ]);
    }
    let result = dedupe(owned_rows_table(&names, &rows));
    assert_eq!(result.metrics.largest_cluster, 3);
    assert_eq!(
        result.metrics.clusters_by_size,
        vec![
            ("1".to_string(), 40),
            ("2".to_string(), 1),
            ("3".to_string(), 1)
        ]
    );
}

#[test]
fn a_personal_inbox_shared_by_two_weighs_more_than_one_shared_by_a_team() {
    // The prior of a pair falls with the rows of its block: two records alone on an address
    // are far likelier one person than two of thirty on `info@`.
    let low = crate::matching::estimate::block_prior(3.0, 30);
    assert!((crate::matching::estimate::block_prior(3.0, 2) - 3.0).abs() < 1e-12);
    assert!((3.0 - low - 29f64.log2()).abs() < 1e-12, "{low}");
}

#[test]
fn namesakes_crowding_a_postcode_are_not_taken_for_duplicates() {
    // 3,000 different people drawn from ten surnames, ten first names and 200 postcodes (so
    // a surname, initial and postcode is shared by 0.15 people besides oneself by chance: one
    // postcode is weighty evidence, yet about 200 namesake pairs share one), every one with
    // an own email and phone; and 40 of them entered twice with the same phone.
    let firsts = [
        "James", "Mary", "Robert", "Linda", "Thomas", "Karen", "David", "Nancy", "Paul", "Helen",
    ];
    let mut state: u64 = 7;
    let mut next = |n: usize| {
        state = state
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        ((state >> 33) as usize) % n
    };
    let mut rows: Vec<[String; 6]> = Vec::new();
    for p in 0..3000 {
        let (s, f, z) = (SURNAMES[next(10)], firsts[next(10)], 10_000 + next(200));
        let row = [
            f.to_string(),
            s.to_string(),
            format!("{}.{}{p}@example.com", f.to_lowercase(), s.to_lowercase()),
            format!("+1 312 55{:05}", p),
            "Chicago".to_string(),
            format!("{z}"),
        ];
        if p < 40 {
            let mut again = row.clone();
            again[2] = String::new();
            rows.push(again);
        }
        rows.push(row);
    }
    let result = dedupe(owned_rows_table(&CONTACT_COLUMNS, &rows));
    // The 40 people entered twice are found (rows 2k and 2k+1 for k < 40), and no cluster
    // holds two people.
    let person = |row: usize| if row < 80 { row / 2 } else { row - 40 };
    assert_eq!(clusters_of_one_person_each(&result, person), 3000);
    // Chance explains the rule's pairs, so its prior says they are mostly not duplicates.
    assert!(
        share_of_rule(&result, "name_sound_postcode") < 0.2,
        "{:?}",
        result.parameters.lambda_per_rule
    );
}

#[test]
fn duplicates_only_a_rule_full_of_chance_pairs_finds_are_still_found() {
    // 6,000 people spread evenly: every combination of surname, first name and postcode holds
    // exactly two of them (full namesakes, each with an own email, phone and company), so the
    // surname-sound, initial and postcode rule's blocks hold half the pairs that names
    // independent of place would give by chance (each cell's count does not vary as chance
    // would make it). 40 people are entered again with only their name, company, city and
    // postcode: no other rule before that one brings them. The chance estimate exceeds the
    // rule's own pairs; a bound that read that as "no duplicate at all" kept every one of the 40
    // apart.
    let firsts = [
        "Andrew", "Brian", "Carol", "Diana", "Edward", "Frank", "Grace", "Henry", "Irene", "Jack",
    ];
    let mut state: u64 = 3;
    let mut letters = || -> String {
        (0..9)
            .map(|_| {
                state = state
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                char::from(b'a' + ((state >> 33) % 26) as u8)
            })
            .collect()
    };
    let columns = [
        "first_name",
        "last_name",
        "email",
        "phone",
        "company",
        "city",
        "postal_code",
    ];
    let mut people: Vec<[String; 7]> = Vec::new();
    for s in SURNAMES {
        for f in firsts {
            for z in 0..30 {
                for _ in 0..2 {
                    let p = people.len();
                    people.push([
                        f.to_string(),
                        s.to_string(),
                        format!("{}.{}{p}@example.com", f.to_lowercase(), s.to_lowercase()),
                        format!("+1 312 55{p:05}"),
                        format!("{} {}", letters(), letters()),
                        "Chicago".to_string(),
                        format!("{}", 60_600 + z),
                    ]);
                }
            }
        }
    }
    // Person p's second entry is row 6,000 + p/150 for every 150th person.
    let again: Vec<usize> = (0..40).map(|k| k * 150).collect();
    let mut rows = people.clone();
    for &p in &again {
        let mut row = people[p].clone();
        row[2] = String::new();
        row[3] = String::new();
        rows.push(row);
    }
    let result = dedupe(owned_rows_table(&columns, &rows));
    let person = |row: usize| if row < 6000 { row } else { again[row - 6000] };
    let clusters = clusters_of_one_person_each(&result, person);
    assert_eq!(clusters, 6000, "the 40 entered twice are found");
    // The rule's share of matches is at most the bound's floor, and not pressed to nothing as the
    // old bound did (40 duplicates among about 3,000 own pairs).
    let share = share_of_rule(&result, "name_sound_postcode");
    assert!(
        (1e-3..=0.1 + 1e-9).contains(&share),
        "{:?}",
        result.parameters.lambda_per_rule
    );
}

/// Clusters as sets of ids, whatever names them.
fn partition_of(result: &DedupeResult) -> std::collections::BTreeSet<Vec<String>> {
    let mut by_cluster: HashMap<&str, Vec<String>> = HashMap::new();
    for a in &result.assignments {
        by_cluster
            .entry(a.cluster_id.as_str())
            .or_default()
            .push(a.id.clone());
    }
    by_cluster
        .into_values()
        .map(|mut ids| {
            ids.sort();
            ids
        })
        .collect()
}

#[test]
fn shuffled_rows_keep_their_clusters_and_get_assignments_in_their_own_order() {
    // Crowded namesakes in two towns (blocks over the window size), some people entered twice with
    // a typo or a missing field. This table clusters alike in any order even without the sorting;
    // tests/dedupe_cli.rs holds rows whose order did change the clusters. What this test pins is
    // that sorted work hands each caller its assignments in the caller's own row order.
    let firsts = ["James", "Mary", "John", "Patricia", "Robert", "Jennifer"];
    let lasts = ["Smith", "Johnson", "Williams", "Brown"];
    let towns = [("Springfield", "62701"), ("Riverton", "82501")];
    let mut state: u64 = 0x9E37_79B9_7F4A_7C15;
    let mut next = |n: u64| {
        state = state
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        ((state >> 33) % n) as usize
    };
    let mut rows: Vec<[String; 6]> = Vec::new();
    for person in 0..1500 {
        let first = firsts[next(6)];
        let last = lasts[next(4)];
        let (town, zip) = towns[next(2)];
        let phone = format!("+1217555{:04}", person);
        let email = format!(
            "{}.{}{}@mail.test",
            first.to_lowercase(),
            last.to_lowercase(),
            person
        );
        let row = [
            first.to_string(),
            last.to_string(),
            email,
            phone,
            town.to_string(),
            zip.to_string(),
        ];
        if next(4) == 0 {
            let mut twin = row.clone();
            match next(3) {
                0 => twin[0].push('e'),
                1 => twin[2] = String::new(),
                _ => twin[3] = String::new(),
            }
            rows.push(twin);
        }
        rows.push(row);
    }
    let as_table = |order: &[usize]| {
        let cells: Vec<Vec<&str>> = order
            .iter()
            .map(|&i| rows[i].iter().map(String::as_str).collect())
            .collect();
        let refs: Vec<&[&str]> = cells.iter().map(Vec::as_slice).collect();
        let mut t = columns_table(&CONTACT_COLUMNS, &refs);
        t.ids = order.iter().map(|i| format!("p{i:05}")).collect();
        t
    };
    let forward: Vec<usize> = (0..rows.len()).collect();
    let mut shuffled = forward.clone();
    for i in (1..shuffled.len()).rev() {
        shuffled.swap(i, next(i as u64 + 1));
    }
    let a = dedupe(as_table(&forward));
    let b = dedupe(as_table(&shuffled));
    assert!(
        a.metrics.windowed_blocks > 0,
        "the table must crowd a block"
    );
    assert_eq!(partition_of(&a), partition_of(&b));
    // The caller's row order is kept in the assignments.
    let ids: Vec<&str> = b.assignments.iter().map(|x| x.id.as_str()).collect();
    let expected: Vec<String> = shuffled.iter().map(|i| format!("p{i:05}")).collect();
    assert_eq!(ids, expected.iter().map(String::as_str).collect::<Vec<_>>());
}

/// An earlier run's decision holds a pair of unchanged records near the threshold against its
/// score, and `held` names the pair; once one record changed, the score decides again.
#[test]
fn an_earlier_decision_holds_an_unchanged_borderline_pair() {
    let rows = [
        ["Maria", "Garcia", "", "", "Austin", "78701"],
        ["Maria", "Garcia", "", "", "Austin", "78702"],
        [
            "John",
            "Smith",
            "john@example.com",
            "5125550100",
            "Austin",
            "78701",
        ],
        [
            "Ann",
            "Lee",
            "ann@example.com",
            "5125550111",
            "Dallas",
            "75201",
        ],
        [
            "Tom",
            "Hart",
            "tom@example.com",
            "5125550122",
            "Houston",
            "77002",
        ],
    ];
    let model = contacts_model();
    let region = normalize::region("US");
    let scored = run(&model, table(&rows), region, 42, KeepPairs::AtLeast(0.0)).expect("dedupe");
    let pair = scored
        .pairs
        .iter()
        .find(|p| scored.ids[p.left as usize] == "r0" && scored.ids[p.right as usize] == "r1")
        .expect("the two Maria Garcias are a candidate pair");
    let accepted_by_score = pair.probability >= model.threshold;
    let threshold_weight = score::log2_odds(model.threshold);
    // A band just wide enough to hold the pair wherever the score put it.
    let margin = (pair.weight - threshold_weight).abs() + 0.5;
    let earlier_accepted = AcceptedPairs::new(if accepted_by_score {
        Vec::new()
    } else {
        vec![("r1".to_string(), "r0".to_string())]
    });
    let remember = |unchanged: &[&str]| {
        let earlier = EarlierDecisions::new(
            margin,
            &earlier_accepted,
            unchanged.iter().map(|s| s.to_string()).collect(),
        );
        run_remembering(
            &model,
            table(&rows),
            region,
            42,
            KeepPairs::Nothing,
            Some(&earlier),
        )
        .expect("dedupe")
    };
    let held = remember(&["r0", "r1", "r2", "r3", "r4"]);
    assert_eq!(
        cluster_of(&held, "r0") == cluster_of(&held, "r1"),
        !accepted_by_score,
        "the earlier decision holds"
    );
    assert_eq!(held.metrics.decisions_held, 1);
    assert_eq!(held.held.len(), 1);
    let changed = remember(&["r0", "r2", "r3", "r4"]);
    assert_eq!(
        cluster_of(&changed, "r0") == cluster_of(&changed, "r1"),
        accepted_by_score,
        "r1 changed: the score decides"
    );
    assert_eq!(changed.metrics.decisions_held, 0);
}

/// A person entered three times with one phone, the third time in another town, in a table where
/// a town rule brings thousands of strangers' pairs, so the share of matches among all
/// candidate pairs is tiny. Judged with that share, the third record and the others score under
/// `cluster_min_probability` as a pair and the guard kept them apart; judged as the phone rule
/// judges the pairs it brings (its own share, its block), they are one person.
#[test]
fn records_sharing_a_phone_are_guarded_as_the_phone_rule_scores_them() {
    let model = MatchModel::from_toml(
        r#"
id_column = "id"
threshold = 0.3
max_block_size = 30
window = 5
cluster_min_probability = 0.01
generational_suffixes = false

[[blocking]]
name = "phone"
keys = ["phone:phone"]

[[blocking]]
name = "town"
keys = ["city"]

[[fields]]
name = "phone"
kind = "phone"
m = [0.9, 0.05, 0.05]
u = [0.05, 0.001, 0.949]

[[fields]]
name = "city"
kind = "text"
m = [0.9, 0.05, 0.05]
u = [0.05, 0.05, 0.9]
"#,
        "test",
    )
    .expect("model");
    let mut rows: Vec<[String; 2]> = Vec::new();
    // Rows 0-2: one person, the third record in another town.
    for city in ["Springfield", "Springfield", "Shelbyville"] {
        rows.push(["+1 217 240 0100".to_string(), city.to_string()]);
    }
    // 100 people entered twice, each pair sharing a phone and a town: the phone rule's pairs
    // are matches.
    for p in 0..100 {
        for _ in 0..2 {
            rows.push([
                format!("+1 312 240 {:04}", 1000 + p),
                "Ogdenville".to_string(),
            ]);
        }
    }
    // 3,000 strangers in one town: the town rule's pairs, none of them matches.
    for p in 0..3000 {
        rows.push([format!("+1 415 240 {:04}", p), "Capital City".to_string()]);
    }
    let result = run(
        &model,
        owned_rows_table(&["phone", "city"], &rows),
        normalize::region("US"),
        42,
        KeepPairs::Nothing,
    )
    .expect("dedupe");
    let global = result.parameters.lambda;
    assert!(global < 0.02, "the share over all pairs is small: {global}");
    let phone = result.parameters.lambda_per_rule[0];
    assert!(phone > 0.5, "the phone rule's pairs are matches: {phone}");
    let first = cluster_of(&result, "r0");
    for id in ["r1", "r2"] {
        assert_eq!(cluster_of(&result, id), first, "{id}");
    }
    assert_eq!(
        cluster_of(&result, "r3"),
        cluster_of(&result, "r4"),
        "each person entered twice is one cluster"
    );
    assert_ne!(cluster_of(&result, "r3"), cluster_of(&result, "r5"));
}
