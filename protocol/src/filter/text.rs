//! Full-text matching on a field without a text index, as Qdrant does it:
//! both sides are split into words (runs of letters and digits,
//! lowercased) and compared word by word.

/// The words of `s`: maximal runs of alphanumeric characters, lowercased
/// (`"Hello, wörld_42"` → `["hello", "wörld", "42"]`).
pub fn tokenize(s: &str) -> Vec<String> {
    s.split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
        .map(str::to_lowercase)
        .collect()
}

/// Every word of `query` is a word of `doc`; an empty query matches nothing.
pub(super) fn contains_all(doc: &str, query: &str) -> bool {
    let q = tokenize(query);
    let d = tokenize(doc);
    !q.is_empty() && q.iter().all(|w| d.contains(w))
}

/// At least one word of `query` is a word of `doc`.
pub(super) fn contains_any(doc: &str, query: &str) -> bool {
    let d = tokenize(doc);
    tokenize(query).iter().any(|w| d.contains(w))
}

/// The words of `phrase` appear in `doc` consecutively and in order.
pub(super) fn contains_phrase(doc: &str, phrase: &str) -> bool {
    let p = tokenize(phrase);
    !p.is_empty() && tokenize(doc).windows(p.len()).any(|w| w == p.as_slice())
}
