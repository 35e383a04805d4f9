//! Lists of names in messages, and "did you mean" for a misspelt one.

/// `` `a`, `b`, `c` ``.
pub(crate) fn list(names: &[&str]) -> String {
    names
        .iter()
        .map(|n| format!("`{n}`"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// ` (did you mean `x`?)` for the closest name, when one is close enough.
pub(crate) fn suggest(name: &str, names: &[&str]) -> String {
    let lower = name.to_lowercase();
    names
        .iter()
        .map(|n| (edit_distance(&lower, &n.to_lowercase()), n))
        .filter(|(d, n)| *d <= (n.len() / 3).max(1))
        .min_by_key(|(d, _)| *d)
        .map(|(_, n)| format!(" (did you mean `{n}`?)"))
        .unwrap_or_default()
}

fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut diag = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let above = row[j + 1];
            row[j + 1] = if ca == *cb {
                diag
            } else {
                1 + diag.min(above).min(row[j])
            };
            diag = above;
        }
    }
    row[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn suggestions() {
        let kinds = ["RateLimit", "Overloaded", "Server", "Timeout", "Network"];
        assert_eq!(suggest("Timout", &kinds), " (did you mean `Timeout`?)");
        assert_eq!(suggest("ratelimit", &kinds), " (did you mean `RateLimit`?)");
        assert_eq!(
            suggest("max_attempt", crate::parse::ARGUMENTS),
            " (did you mean `max_attempts`?)"
        );
        assert_eq!(suggest("xyz", &kinds), "");
    }
}
