//! Human output: aligned columns, blank for absent values.

use serde_json::Value;

/// A value as a table cell: strings bare, null and absent as `-`.
pub fn cell(v: &Value) -> String {
    match v {
        Value::Null => "-".to_owned(),
        Value::String(s) => s.clone(),
        Value::Number(n) => match n.as_f64() {
            Some(f) if n.is_f64() => format!("{f:.2}"),
            _ => n.to_string(),
        },
        other => other.to_string(),
    }
}

/// Renders `rows` under `headers`, every column as wide as its widest cell; the last column is
/// left unpadded so long texts (results, errors) do not push trailing blanks.
pub fn render(headers: &[&str], rows: &[Vec<String>]) -> String {
    let mut widths: Vec<usize> = headers.iter().map(|h| h.chars().count()).collect();
    for row in rows {
        for (w, c) in widths.iter_mut().zip(row) {
            *w = (*w).max(c.chars().count());
        }
    }
    let mut out = String::new();
    let mut line = |cells: &mut dyn Iterator<Item = &str>| {
        let cells: Vec<&str> = cells.collect();
        for (i, c) in cells.iter().enumerate() {
            if i + 1 == cells.len() {
                out.push_str(c);
            } else {
                out.push_str(c);
                out.extend(std::iter::repeat_n(' ', widths[i] - c.chars().count() + 2));
            }
        }
        out.push('\n');
    };
    line(&mut headers.iter().copied());
    for row in rows {
        line(&mut row.iter().map(String::as_str));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn columns_align_and_absent_values_show_a_dash() {
        let rows = vec![
            vec!["a".to_owned(), cell(&Value::Null), "x".to_owned()],
            vec![
                "long".to_owned(),
                cell(&serde_json::json!(0.5)),
                "y".to_owned(),
            ],
        ];
        assert_eq!(
            render(&["ID", "R", "LAST"], &rows),
            "ID    R     LAST\na     -     x\nlong  0.50  y\n"
        );
    }
}
