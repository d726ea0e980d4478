//! Small text helpers.

/// Cuts `s` to at most `max` characters, on a character boundary.
pub fn truncate_chars(s: &mut String, max: usize) {
    if let Some((i, _)) = s.char_indices().nth(max) {
        s.truncate(i);
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn truncates_on_char_boundaries() {
        let mut s = "éééé".to_owned();
        super::truncate_chars(&mut s, 3);
        assert_eq!(s, "ééé");
        let mut s = "ab".to_owned();
        super::truncate_chars(&mut s, 3);
        assert_eq!(s, "ab");
    }
}
