//! Dictionary encoding: every column the model reads becomes a code per row and a list of its
//! distinct values. Contact tables repeat values heavily (a few thousand first names and cities
//! across a million rows), so each normaliser, phone parse and blocking key runs once per distinct
//! value, and "are these two values identical" is one integer comparison.

use rayon::prelude::*;
use rustc_hash::FxHashMap;
use std::hash::Hash;

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

/// The code of an empty cell.
pub const NULL_CODE: u32 = u32::MAX;

/// A column of text cells stored end to end in one buffer: a million-row column is two allocations
/// rather than a million, its cells read back as `&str`, and it is freed at once. A blank cell
/// (empty or only whitespace) holds no value.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TextColumn {
    text: String,
    /// Where each row's cell ends in `text`; it starts where the previous row's ends.
    ends: Vec<usize>,
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

    /// Appends a row's cell.
    pub fn push(&mut self, cell: Option<&str>) {
        if let Some(cell) = cell.filter(|c| !c.trim().is_empty()) {
            self.text.push_str(cell);
        }
        self.ends.push(self.text.len());
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
    pub fn get(&self, row: usize) -> Option<&str> {
        let start = if row == 0 { 0 } else { self.ends[row - 1] };
        let end = self.ends[row];
        (end > start).then(|| &self.text[start..end])
    }

    /// Every row's cell, in order.
    pub fn iter(&self) -> impl Iterator<Item = Option<&str>> + '_ {
        (0..self.len()).map(|row| self.get(row))
    }

    /// The cells of `rows`, in that order.
    pub fn select(&self, rows: &[usize]) -> TextColumn {
        let mut out = TextColumn::with_capacity(rows.len(), self.text.len());
        for &row in rows {
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

/// One column, encoded.
#[derive(Debug, Clone, Default)]
pub struct Dictionary {
    /// Code of each row's value (`NULL_CODE` for an empty cell).
    pub codes: Vec<u32>,
    /// A row holding each distinct value (its first), so the text is read from the input.
    pub first_row: Vec<u32>,
}

impl Dictionary {
    /// Encodes raw cells; blank cells are empty.
    pub fn of_cells(cells: &TextColumn) -> Self {
        // Sized for every cell distinct: growing a million-entry map rehashes it twenty times.
        let mut index: FxHashMap<&str, u32> =
            FxHashMap::with_capacity_and_hasher(cells.len(), Default::default());
        let mut first_row = Vec::new();
        let codes = cells
            .iter()
            .enumerate()
            .map(|(row, cell)| match cell.map(str::trim) {
                Some(v) if !v.is_empty() => *index.entry(v).or_insert_with(|| {
                    first_row.push(row as u32);
                    (first_row.len() - 1) as u32
                }),
                _ => NULL_CODE,
            })
            .collect();
        Dictionary { codes, first_row }
    }

    /// Number of distinct values.
    pub fn len(&self) -> usize {
        self.first_row.len()
    }

    /// Whether the column holds no value at all.
    pub fn is_empty(&self) -> bool {
        self.first_row.is_empty()
    }

    /// The text of each distinct value.
    pub fn distinct<'a>(&self, cells: &'a TextColumn) -> Vec<&'a str> {
        self.first_row
            .iter()
            .map(|&r| cells.get(r as usize).map_or("", str::trim))
            .collect()
    }

    /// Maps every distinct value through `f` (in parallel: this is where phone parsing and name
    /// folding happen), then re-encodes by the result, so values that map to the same thing share
    /// a code. Returns the new codes per row and the distinct results.
    pub fn map_distinct<T, F>(&self, cells: &TextColumn, f: F) -> (Vec<u32>, Vec<T>)
    where
        T: Eq + Hash + Send + Sync,
        F: Fn(&str) -> Option<T> + Sync + Send,
    {
        remap(&self.codes, &self.distinct(cells), |v: &&str| f(v))
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
    // The index holds references (a compact table even when each result is large), and the
    // distinct results are moved out of `mapped` afterwards: a million prepared emails or phones
    // are not cloned.
    let mut first: Vec<usize> = Vec::new();
    let recode: Vec<u32> = {
        let mut index: FxHashMap<&T, u32> =
            FxHashMap::with_capacity_and_hasher(mapped.len(), Default::default());
        mapped
            .iter()
            .enumerate()
            .map(|(position, m)| match m {
                Some(v) => *index.entry(v).or_insert_with(|| {
                    first.push(position);
                    (first.len() - 1) as u32
                }),
                None => NULL_CODE,
            })
            .collect()
    };
    let distinct: Vec<T> = first
        .iter()
        .filter_map(|&position| mapped[position].take())
        .collect();
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

#[cfg(test)]
mod tests {
    use super::*;

    fn cells(values: &[&str]) -> TextColumn {
        values.iter().map(|v| Some(*v)).collect()
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
        assert_eq!(d.distinct(&c), vec!["Ann", "Bob"]);
    }

    #[test]
    fn mapping_merges_values_that_normalise_alike() {
        let c = cells(&["ANN", "ann", "Bob", "x"]);
        let d = Dictionary::of_cells(&c);
        let (codes, values) = d.map_distinct(&c, |v| (v.len() == 3).then(|| v.to_lowercase()));
        assert_eq!(codes, vec![0, 0, 1, NULL_CODE]);
        assert_eq!(values, vec!["ann".to_string(), "bob".to_string()]);
    }
}
