//! The `*`/`?` glob matcher shared by the cost table and a key's allowed models, bounded to
//! O(pattern × text) whatever the pattern.

/// Glob match with `*` (any run, including none) and `?` (exactly one char),
/// case-sensitive, over chars rather than bytes.
///
/// Greedy with a single backtrack point: on a mismatch only the most recent
/// `*` is widened, never an earlier one, because an earlier star can absorb
/// nothing that the later one could not. That bounds the work by
/// O(pattern × text) whatever the pattern, where naive recursion is
/// exponential in the number of stars.
pub fn glob_match(pattern: &str, text: &str) -> bool {
    let pattern: Vec<char> = pattern.chars().collect();
    let text: Vec<char> = text.chars().collect();
    let (mut p, mut t) = (0, 0);
    // (pattern index just after the last `*`, text index it is matched up to)
    let mut star: Option<(usize, usize)> = None;
    while let Some(&c) = text.get(t) {
        match pattern.get(p) {
            Some('*') => {
                p += 1;
                star = Some((p, t));
            }
            Some(&q) if q == '?' || q == c => {
                p += 1;
                t += 1;
            }
            _ => {
                let Some((after_star, absorbed)) = star else {
                    return false;
                };
                // Let the star absorb one more char and retry from there.
                p = after_star;
                t = absorbed + 1;
                star = Some((after_star, t));
            }
        }
    }
    pattern.iter().skip(p).all(|&c| c == '*')
}
