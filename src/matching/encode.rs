//! Dictionary encoding: every column the model reads becomes a code per row and a list of its
//! distinct values. Contact tables repeat values heavily (a few thousand first names and cities
//! across a million rows), so each normaliser, phone parse and blocking key runs once per distinct
//! value, and "are these two values identical" is one integer comparison.

use rayon::prelude::*;
use rustc_hash::FxHashMap;
use std::hash::{BuildHasher, Hash};

/// An empty vector with room for `capacity` items, whose memory is backed by huge pages where
/// the system allows it. Pair scoring reads two rows' codes and blocking slots from anywhere in
/// tables of hundreds of megabytes at 10 M rows; with 4 KiB pages nearly every such read also
/// misses the TLB, and 2 MiB pages take a quarter off scoring there. Linux's default
/// (`transparent_hugepage` set to `madvise`) gives them only to memory that asks before it is
/// first touched, so the vector is filled after this.
pub fn with_huge_pages<T>(capacity: usize) -> Vec<T> {
    let out = Vec::with_capacity(capacity);
    advise_huge_pages(&out);
    out
}

/// Asks for huge pages over the whole 2 MiB pages inside a vector's allocation (a hint: refused
/// or unsupported, nothing changes).
fn advise_huge_pages<T>(v: &Vec<T>) {
    #[cfg(target_os = "linux")]
    {
        const HUGE_PAGE: usize = 2 << 20;
        let start = v.as_ptr() as usize;
        let end = start + v.capacity() * std::mem::size_of::<T>();
        let aligned = start.next_multiple_of(HUGE_PAGE);
        if end >= aligned + HUGE_PAGE {
            let length = (end - aligned) / HUGE_PAGE * HUGE_PAGE;
            // SAFETY: the range lies inside the vector's own allocation, and MADV_HUGEPAGE only
            // changes how its pages are backed, never their contents.
            unsafe {
                libc::madvise(aligned as *mut libc::c_void, length, libc::MADV_HUGEPAGE);
            }
        }
    }
    #[cfg(not(target_os = "linux"))]
    let _ = v;
}

/// Starts loading the cache line holding `value` (a hint; nothing on processors other than
/// x86-64).
#[inline(always)]
pub fn prefetch<T>(value: &T) {
    #[cfg(target_arch = "x86_64")]
    // SAFETY: SSE, which the instruction needs, is part of every x86-64 processor; the pointer
    // comes from a reference, and a prefetch reads nothing into the program and never faults.
    unsafe {
        use std::arch::x86_64::{_MM_HINT_T0, _mm_prefetch};
        _mm_prefetch::<_MM_HINT_T0>((value as *const T).cast());
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = value;
}

/// Starts loading every cache line `values` spans ([`prefetch`]).
#[inline(always)]
pub fn prefetch_slice<T>(values: &[T]) {
    const LINE: usize = 64;
    let per_line = (LINE / std::mem::size_of::<T>().max(1)).max(1);
    // A chunk starts in each line the slice covers but the last, which holds its last value.
    for chunk in values.chunks(per_line) {
        prefetch(&chunk[0]);
    }
    if let Some(last) = values.last() {
        prefetch(last);
    }
}

/// How many cells ahead [`TextColumn::select`] starts loading a cell's end.
const SELECT_AHEAD: usize = 16;

/// The code of an empty cell.
pub const NULL_CODE: u32 = u32::MAX;

/// A column of text cells stored end to end in one buffer: a million-row column is two allocations
/// rather than a million, its cells read back as `&str`, and it is freed at once. A blank cell
/// (empty or only whitespace) holds no value. A column holds at most [`TextColumn::MAX_BYTES`]
/// of text.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TextColumn {
    text: String,
    /// Where each row's cell ends in `text`; it starts where the previous row's ends. Four bytes
    /// a row, not eight: at 10 M rows and nine columns that is 360 MB less to allocate and touch.
    ends: Vec<u32>,
}

impl TextColumn {
    /// An empty column with room for `rows` cells of `bytes` bytes in all.
    pub fn with_capacity(rows: usize, bytes: usize) -> Self {
        TextColumn {
            text: String::with_capacity(bytes),
            ends: Vec::with_capacity(rows),
        }
    }

    /// A column of `rows` cells without a value.
    pub fn blank(rows: usize) -> Self {
        TextColumn {
            text: String::new(),
            ends: vec![0; rows],
        }
    }

    /// The most text one column holds: 4 GiB, over 400 bytes a cell at ten million rows. The
    /// readers refuse a longer column, naming the file and column (and the line, reading a CSV
    /// record by record). Columns built in memory (from CRM snapshots, names split in two, or a
    /// field's prepared keys, which folding can lengthen) are not checked: past this, `push`
    /// panics.
    pub const MAX_BYTES: usize = u32::MAX as usize;

    /// Whether `cell` can be appended without the column passing [`TextColumn::MAX_BYTES`].
    pub fn fits(&self, cell: Option<&str>) -> bool {
        self.text.len() + cell.map_or(0, str::len) <= Self::MAX_BYTES
    }

    /// Appends a row's cell. Panics past [`TextColumn::MAX_BYTES`].
    pub fn push(&mut self, cell: Option<&str>) {
        if let Some(cell) = cell.filter(|c| !c.trim().is_empty()) {
            self.text.push_str(cell);
        }
        let end = u32::try_from(self.text.len()).expect("a text column holds at most 4 GiB");
        self.ends.push(end);
    }

    /// Number of rows.
    pub fn len(&self) -> usize {
        self.ends.len()
    }

    /// Whether the column has no rows.
    pub fn is_empty(&self) -> bool {
        self.ends.is_empty()
    }

    /// A row's cell, as written; `None` when blank.
    #[inline]
    pub fn get(&self, row: usize) -> Option<&str> {
        let start = self.start(row);
        let end = self.ends[row] as usize;
        (end > start).then(|| &self.text[start..end])
    }

    /// Where a row's cell starts in `text`: where the previous row's ends.
    #[inline]
    fn start(&self, row: usize) -> usize {
        if row == 0 {
            0
        } else {
            self.ends[row - 1] as usize
        }
    }

    /// Every row's cell, in order.
    pub fn iter(&self) -> impl Iterator<Item = Option<&str>> + '_ {
        (0..self.len()).map(|row| self.get(row))
    }

    /// The cells of `rows`, in that order.
    pub fn select(&self, rows: &[usize]) -> TextColumn {
        let mut out = TextColumn::with_capacity(rows.len(), self.text.len());
        // In a random order each cell is two cache misses, its end and then its text. They are
        // started ahead, the text half as far ahead as the ends it is found by.
        for (k, &row) in rows.iter().enumerate() {
            if let Some(&ahead) = rows.get(k + SELECT_AHEAD) {
                prefetch(&self.ends[ahead]);
                if ahead > 0 {
                    prefetch(&self.ends[ahead - 1]);
                }
            }
            if let Some(&ahead) = rows.get(k + SELECT_AHEAD / 2)
                && let Some(byte) = self.text.as_bytes().get(self.start(ahead))
            {
                prefetch(byte);
            }
            out.push(self.get(row));
        }
        out
    }
}

impl<S: AsRef<str>> FromIterator<Option<S>> for TextColumn {
    fn from_iter<I: IntoIterator<Item = Option<S>>>(cells: I) -> Self {
        let mut out = TextColumn::default();
        for cell in cells {
            out.push(cell.as_ref().map(AsRef::as_ref));
        }
        out
    }
}

/// One column, encoded: a code per row and the text of each distinct value. It holds the values
/// itself, so the matcher frees the input's cells once every column is encoded (1.5 GB at 10 M
/// rows; the distinct values of names and places are far less, emails and phones nearly all).
#[derive(Debug, Clone, Default)]
pub struct Dictionary {
    /// Code of each row's value (`NULL_CODE` for an empty cell).
    pub codes: Vec<u32>,
    /// Each distinct value, trimmed, by code.
    values: TextColumn,
}

impl Dictionary {
    /// Encodes raw cells; blank cells are empty.
    pub fn of_cells(cells: &TextColumn) -> Self {
        let (codes, first_row) = number_by_first_occurrence(cells.len(), |row| {
            cells.get(row).map(str::trim).filter(|v| !v.is_empty())
        });
        let values = first_row
            .iter()
            .map(|&r| cells.get(r as usize).map(str::trim))
            .collect();
        Dictionary { codes, values }
    }

    /// Number of distinct values.
    pub fn len(&self) -> usize {
        self.values.len()
    }

    /// Whether the column holds no value at all.
    pub fn is_empty(&self) -> bool {
        self.values.is_empty()
    }

    /// The text of each distinct value.
    pub fn distinct(&self) -> Vec<&str> {
        self.values.iter().map(|v| v.unwrap_or_default()).collect()
    }

    /// Maps every distinct value through `f` (in parallel: this is where phone parsing and name
    /// folding happen), then re-encodes by the result, so values that map to the same thing share
    /// a code. Returns the new codes per row and the distinct results.
    pub fn map_distinct<T, F>(&self, f: F) -> (Vec<u32>, Vec<T>)
    where
        T: Eq + Hash + Send + Sync,
        F: Fn(&str) -> Option<T> + Sync + Send,
    {
        remap(&self.codes, &self.distinct(), |v: &&str| f(v))
    }
}

/// Maps distinct values (`values[code]`) through `f` and re-encodes by the result, like
/// [`Dictionary::map_distinct`] for a column that is already encoded.
pub fn remap<S, T, F>(codes: &[u32], values: &[S], f: F) -> (Vec<u32>, Vec<T>)
where
    S: Sync,
    T: Eq + Hash + Send + Sync,
    F: Fn(&S) -> Option<T> + Sync + Send,
{
    let mut mapped: Vec<Option<T>> = values.par_iter().map(&f).collect();
    // The results are numbered through references (a compact index even when each result is
    // large), then the distinct ones are moved to the front of `mapped` and the rest dropped:
    // ten million prepared emails or phones are neither cloned nor copied into a second vector.
    let (recode, first) =
        number_by_first_occurrence(mapped.len(), |position| mapped[position].as_ref());
    // First occurrences ascend, so the k-th lies at or after k, and nothing is moved onto a
    // place still to be read.
    for (k, &position) in first.iter().enumerate() {
        mapped.swap(k, position as usize);
    }
    mapped.truncate(first.len());
    // `Option<T>` to `T` in the same allocation (the standard library collects in place when
    // the alignments agree): its pages are already touched, where a new vector's would each
    // cost a page fault. Where many values mapped alike, most of it is given back.
    let mut distinct: Vec<T> = mapped
        .into_iter()
        .map(|value| value.expect("a first occurrence has a value"))
        .collect();
    if distinct.capacity() > 2 * distinct.len() {
        distinct.shrink_to_fit();
    }
    let codes = codes
        .iter()
        .map(|&c| {
            if c == NULL_CODE {
                NULL_CODE
            } else {
                recode[c as usize]
            }
        })
        .collect();
    (codes, distinct)
}

/// Numbers `items` items by equality of their keys (`key(item)`, `None` for an item without
/// one), in order of first occurrence. Returns each item's number (`NULL_CODE` where it has no
/// key) and the item where each number first occurs.
///
/// One hash map over ten million distinct values is a table of hundreds of megabytes that every
/// lookup misses in cache, on one core. So each key is hashed once (reading the keys in order, on
/// every core), items are grouped by their hash's top bits into partitions of a few thousand,
/// and each partition finds every item's first equal hash with its own small map, reading no
/// key. Equal hashes are then checked to be equal keys; if two keys ever share a 64-bit hash, the
/// input is numbered again with one map of keys. Either way the result is the one a single map
/// gives.
pub fn number_by_first_occurrence<K, F>(items: usize, key: F) -> (Vec<u32>, Vec<u32>)
where
    K: Hash + Eq,
    F: Fn(usize) -> Option<K> + Sync,
{
    let bits = partition_bits(items);
    if bits == 0 {
        return number_with_one_map(items, key);
    }
    number_in_partitions(items, bits, &key).unwrap_or_else(|| number_with_one_map(items, key))
}

/// Items per partition the numbering aims for: a map of this many keys fits in a core's cache.
const ITEMS_PER_PARTITION: usize = 4096;

/// How many top hash bits pick an item's partition: none for a small input, where one map is
/// already in cache.
fn partition_bits(items: usize) -> u32 {
    (items / ITEMS_PER_PARTITION)
        .next_power_of_two()
        .trailing_zeros()
        .min(16)
}

/// The numbering with one map of keys, item by item.
fn number_with_one_map<K, F>(items: usize, key: F) -> (Vec<u32>, Vec<u32>)
where
    K: Hash + Eq,
    F: Fn(usize) -> Option<K>,
{
    let mut index: FxHashMap<K, u32> = FxHashMap::default();
    let mut first_item = Vec::new();
    let codes = (0..items)
        .map(|item| match key(item) {
            Some(k) => *index.entry(k).or_insert_with(|| {
                first_item.push(item as u32);
                (first_item.len() - 1) as u32
            }),
            None => NULL_CODE,
        })
        .collect();
    (codes, first_item)
}

/// The hash of an item without a key (no keyed item hashes to it).
const NO_HASH: u64 = u64::MAX;

/// The numbering by hashes in `1 << bits` partitions; `None` if two different keys share a hash.
fn number_in_partitions<K, F>(items: usize, bits: u32, key: &F) -> Option<(Vec<u32>, Vec<u32>)>
where
    K: Hash + Eq,
    F: Fn(usize) -> Option<K> + Sync,
{
    let hasher = rustc_hash::FxBuildHasher;
    // Fx hashes are fast but weak in their top bits, which pick the partition: mix them first.
    let hashes: Vec<u64> = (0..items)
        .into_par_iter()
        .map(|item| key(item).map_or(NO_HASH, |k| mix(hasher.hash_one(&k)).min(NO_HASH - 1)))
        .collect();
    let partition = |h: u64| (h >> (64 - bits)) as usize;
    // (hash, item) grouped by partition, items ascending within each: a counting sort.
    let partitions = 1usize << bits;
    let mut starts = vec![0usize; partitions + 1];
    for &h in hashes.iter().filter(|&&h| h != NO_HASH) {
        starts[partition(h) + 1] += 1;
    }
    for p in 0..partitions {
        starts[p + 1] += starts[p];
    }
    // Written at thousands of places at once: huge pages keep those writes off the TLB's misses.
    let mut order: Vec<(u64, u32)> = with_huge_pages(starts[partitions]);
    order.resize(starts[partitions], (0, 0));
    let mut next = starts.clone();
    for (item, &h) in hashes.iter().enumerate().filter(|(_, h)| **h != NO_HASH) {
        let p = partition(h);
        order[next[p]] = (h, item as u32);
        next[p] += 1;
    }
    drop(hashes);
    // Within each partition, every item's first item of equal hash.
    let firsts: Vec<Vec<u32>> = (0..partitions)
        .into_par_iter()
        .map(|p| {
            let members = &order[starts[p]..starts[p + 1]];
            let mut first_of: FxHashMap<u64, u32> =
                FxHashMap::with_capacity_and_hasher(members.len(), Default::default());
            members
                .iter()
                .map(|&(h, item)| *first_of.entry(h).or_insert(item))
                .collect()
        })
        .collect();
    let mut first_equal = vec![NULL_CODE; items];
    for (p, firsts) in firsts.iter().enumerate() {
        for (&(_, item), &first) in order[starts[p]..starts[p + 1]].iter().zip(firsts) {
            first_equal[item as usize] = first;
        }
    }
    drop(firsts);
    drop(order);
    let collision = first_equal.par_iter().enumerate().any(|(item, &first)| {
        first != NULL_CODE && first as usize != item && key(item) != key(first as usize)
    });
    if collision {
        return None;
    }
    // A number per first occurrence, in order; every later item takes its first's number.
    let mut first_item = Vec::new();
    let mut codes: Vec<u32> = Vec::with_capacity(items);
    for (item, &first) in first_equal.iter().enumerate() {
        let code = if first == NULL_CODE {
            NULL_CODE
        } else if first as usize == item {
            first_item.push(item as u32);
            (first_item.len() - 1) as u32
        } else {
            codes[first as usize]
        };
        codes.push(code);
    }
    Some((codes, first_item))
}

/// splitmix64's finaliser: spreads a hash's entropy over all its bits.
pub(super) fn mix(mut h: u64) -> u64 {
    h = (h ^ (h >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    h = (h ^ (h >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    h ^ (h >> 31)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cells(values: &[&str]) -> TextColumn {
        values.iter().map(|v| Some(*v)).collect()
    }

    /// The numbering in order of first occurrence, worked out without hashing: a table indexed
    /// by the key itself (every `u16` has a slot).
    fn numbered_in_order(keys: &[Option<u16>]) -> (Vec<u32>, Vec<u32>) {
        let mut code_of = vec![NULL_CODE; 1 << 16];
        let mut first = Vec::new();
        let codes = keys
            .iter()
            .enumerate()
            .map(|(item, k)| match k {
                None => NULL_CODE,
                Some(k) => {
                    let slot = &mut code_of[*k as usize];
                    if *slot == NULL_CODE {
                        *slot = first.len() as u32;
                        first.push(item as u32);
                    }
                    *slot
                }
            })
            .collect();
        (codes, first)
    }

    proptest::proptest! {
        #[test]
        fn numbering_in_partitions_is_numbering_in_order(
            keys in proptest::collection::vec(proptest::option::of(0u16..300), 0..2000),
            bits in 1u32..9,
        ) {
            let got = number_in_partitions(keys.len(), bits, &|item| keys[item]);
            proptest::prop_assert_eq!(got, Some(numbered_in_order(&keys)));
        }
    }

    proptest::proptest! {
        #[test]
        fn remapping_numbers_results_in_order_and_keeps_each_once(
            values in proptest::collection::vec(0u16..400, 0..3000),
            picks in proptest::collection::vec(proptest::option::of(0usize..3000), 0..500),
        ) {
            let f = |v: &u16| (!v.is_multiple_of(7)).then(|| format!("v{}", v % 90));
            let codes: Vec<u32> = picks
                .iter()
                .map(|p| p.filter(|_| !values.is_empty()).map_or(NULL_CODE, |p| (p % values.len()) as u32))
                .collect();
            // Worked out with a list: each result's number is its place among the distinct
            // results in order of first occurrence.
            let mut want_distinct: Vec<String> = Vec::new();
            let recode: Vec<u32> = values
                .iter()
                .map(|v| match f(v) {
                    None => NULL_CODE,
                    Some(r) => match want_distinct.iter().position(|d| *d == r) {
                        Some(k) => k as u32,
                        None => {
                            want_distinct.push(r);
                            (want_distinct.len() - 1) as u32
                        }
                    },
                })
                .collect();
            let want_codes: Vec<u32> = codes
                .iter()
                .map(|&c| if c == NULL_CODE { NULL_CODE } else { recode[c as usize] })
                .collect();
            proptest::prop_assert_eq!(remap(&codes, &values, f), (want_codes, want_distinct));
        }
    }

    /// A key every value of which hashes alike.
    #[derive(PartialEq, Eq)]
    struct Colliding(u16);

    impl Hash for Colliding {
        fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
            state.write_u8(0);
        }
    }

    #[test]
    fn keys_sharing_a_hash_are_still_told_apart() {
        let keys: Vec<Option<u16>> = (0..20_000u32).map(|i| Some((i % 5) as u16)).collect();
        let colliding = |item: usize| keys[item].map(Colliding);
        assert!(number_in_partitions(keys.len(), 3, &colliding).is_none());
        assert_eq!(
            number_by_first_occurrence(keys.len(), colliding),
            numbered_in_order(&keys)
        );
    }

    #[test]
    fn a_large_input_is_split_into_partitions_and_numbered_in_order() {
        assert_eq!(partition_bits(100), 0);
        assert!(partition_bits(1 << 20) >= 8);
        let keys: Vec<Option<u16>> = (0..300_000u32)
            .map(|i| (i % 7 != 0).then_some((i.wrapping_mul(2_654_435_761) >> 16) as u16))
            .collect();
        let got = number_by_first_occurrence(keys.len(), |item| keys[item]);
        assert_eq!(got, numbered_in_order(&keys));
    }

    #[test]
    fn huge_page_vectors_hold_what_was_asked() {
        let mut big: Vec<u32> = with_huge_pages(3 << 20);
        assert!(big.is_empty() && big.capacity() >= 3 << 20);
        big.resize(3 << 20, 7);
        assert!(big.iter().all(|&x| x == 7));
        let mut small: Vec<&str> = with_huge_pages(2);
        small.extend(["a", "b"]);
        assert_eq!(small, vec!["a", "b"]);
    }

    #[test]
    fn text_columns_read_back_each_cell_and_blanks_as_none() {
        let c = cells(&["Ann", "", " Bob ", "  ", "Zoë 😀"]);
        assert_eq!(c.len(), 5);
        assert_eq!(
            c.iter().collect::<Vec<_>>(),
            vec![Some("Ann"), None, Some(" Bob "), None, Some("Zoë 😀")]
        );
        assert_eq!(
            c.select(&[4, 1, 0]).iter().collect::<Vec<_>>(),
            vec![Some("Zoë 😀"), None, Some("Ann")]
        );
        assert_eq!(
            TextColumn::blank(2).iter().collect::<Vec<_>>(),
            vec![None, None]
        );
    }

    #[test]
    fn equal_cells_share_a_code_and_blanks_are_null() {
        let c = cells(&["Ann", "Bob", " Ann ", "", "  "]);
        let d = Dictionary::of_cells(&c);
        assert_eq!(d.codes, vec![0, 1, 0, NULL_CODE, NULL_CODE]);
        assert_eq!(d.distinct(), vec!["Ann", "Bob"]);
    }

    #[test]
    fn a_value_first_written_with_spaces_is_kept_trimmed() {
        let c = cells(&[" Ann ", "Ann", "\tBob"]);
        let d = Dictionary::of_cells(&c);
        assert_eq!(d.codes, vec![0, 0, 1]);
        assert_eq!(d.distinct(), vec!["Ann", "Bob"]);
    }

    #[test]
    fn mapping_merges_values_that_normalise_alike() {
        let c = cells(&["ANN", "ann", "Bob", "x"]);
        let d = Dictionary::of_cells(&c);
        let (codes, values) = d.map_distinct(|v| (v.len() == 3).then(|| v.to_lowercase()));
        assert_eq!(codes, vec![0, 0, 1, NULL_CODE]);
        assert_eq!(values, vec!["ann".to_string(), "bob".to_string()]);
    }
}
