//! Small text helpers every front and service shares: a one-line preview, a capitalised
//! first letter, and the edit distance behind "did you mean …?" suggestions.

/// The first line of `s`, cut to at most `max` characters (ending with `…` when cut).
pub fn one_line(s: &str, max: usize) -> String {
    let line = s.lines().next().unwrap_or("");
    if line.chars().count() > max {
        let cut: String = line.chars().take(max.saturating_sub(1)).collect();
        format!("{cut}…")
    } else {
        line.to_owned()
    }
}

/// `s` with its first character in upper case (`lunavo` → `Lunavo`).
pub fn capitalise(s: &str) -> String {
    let mut c = s.chars();
    match c.next() {
        Some(f) => f.to_uppercase().chain(c).collect(),
        None => String::new(),
    }
}

/// The Levenshtein distance between `a` and `b`, counted in characters.
pub fn edit_distance(a: &str, b: &str) -> usize {
    let a: Vec<char> = a.chars().collect();
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.iter().enumerate() {
        let mut cur = vec![i + 1];
        for (j, cb) in b.iter().enumerate() {
            let cost = usize::from(ca != cb);
            cur.push((prev[j] + cost).min(prev[j + 1] + 1).min(cur[j] + 1));
        }
        prev = cur;
    }
    prev[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_line_keeps_the_first_line_and_cuts_with_an_ellipsis() {
        assert_eq!(one_line("short\nsecond line", 10), "short");
        assert_eq!(one_line("exactly10!", 10), "exactly10!");
        assert_eq!(one_line("eleven char", 10), "eleven ch…");
        assert_eq!(one_line("ääääääää", 4), "äää…");
        assert_eq!(one_line("", 5), "");
    }

    #[test]
    fn capitalise_only_the_first_character() {
        assert_eq!(capitalise("lunavo"), "Lunavo");
        assert_eq!(capitalise("ärger"), "Ärger");
        assert_eq!(capitalise("ALREADY"), "ALREADY");
        assert_eq!(capitalise(""), "");
    }

    #[test]
    fn edit_distance_counts_characters() {
        assert_eq!(edit_distance("approve", "aprove"), 1);
        assert_eq!(edit_distance("kitten", "sitting"), 3);
        assert_eq!(edit_distance("", "abc"), 3);
        assert_eq!(edit_distance("same", "same"), 0);
        assert_eq!(edit_distance("Berlín", "Berlin"), 1);
    }
}
