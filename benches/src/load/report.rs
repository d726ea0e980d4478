//! The summary: a readable table on stdout and the same figures as JSON (`--json FILE`).

use std::io::Write as _;
use std::path::Path;

use hdrhistogram::Histogram;
use serde_json::{Map, Value, json};

/// Figures in the order they were added.
#[derive(Debug, Default)]
pub struct Summary {
    rows: Vec<(String, Value)>,
}

impl Summary {
    /// Adds one figure.
    pub fn put(&mut self, key: &str, value: impl Into<Value>) {
        self.rows.push((key.to_owned(), value.into()));
    }

    /// Adds p50/p90/p99/p99.9/max (milliseconds) of a histogram kept in microseconds.
    pub fn percentiles(&mut self, key: &str, h: &Histogram<u64>) {
        if h.is_empty() {
            self.put(key, Value::Null);
            return;
        }
        let ms = |q: f64| round3(h.value_at_quantile(q) as f64 / 1000.0);
        self.put(
            key,
            json!({
                "n": h.len(),
                "p50_ms": ms(0.50),
                "p90_ms": ms(0.90),
                "p99_ms": ms(0.99),
                "p999_ms": ms(0.999),
                "max_ms": round3(h.max() as f64 / 1000.0),
            }),
        );
    }

    /// The JSON object.
    pub fn to_json(&self) -> Value {
        Value::Object(self.rows.iter().cloned().collect::<Map<_, _>>())
    }

    /// Prints the table and writes the JSON file when asked.
    pub fn emit(&self, json_path: Option<&Path>) -> Result<(), String> {
        let width = self.rows.iter().map(|(k, _)| k.len()).max().unwrap_or(0);
        let mut out = std::io::stdout().lock();
        let line = "-".repeat(width + 50);
        let _ = writeln!(out, "{line}");
        for (key, value) in &self.rows {
            let text = match value {
                Value::String(s) => s.clone(),
                Value::Object(o) if o.contains_key("p99_ms") => format!(
                    "p50 {} ms  p90 {} ms  p99 {} ms  p99.9 {} ms  max {} ms  (n={})",
                    o["p50_ms"], o["p90_ms"], o["p99_ms"], o["p999_ms"], o["max_ms"], o["n"]
                ),
                other => other.to_string(),
            };
            let _ = writeln!(out, "{key:<width$}  {text}");
        }
        let _ = writeln!(out, "{line}");
        if let Some(path) = json_path {
            let text = serde_json::to_string_pretty(&self.to_json()).map_err(|e| e.to_string())?;
            std::fs::write(path, text + "\n").map_err(|e| format!("{}: {e}", path.display()))?;
        }
        Ok(())
    }
}

/// Rounds to three decimals for readable JSON.
pub fn round3(x: f64) -> f64 {
    (x * 1000.0).round() / 1000.0
}

/// Accepted→delivered latency (µs): each notification's first `S` receipt minus its ingest answer time.
pub fn accepted_to_delivered(answers: &[(u64, u64)], receipts: &[(u64, u64)]) -> Histogram<u64> {
    let mut h = super::ingest::histogram();
    let mut answered: std::collections::HashMap<u64, u64> = answers.iter().copied().collect();
    for &(seq, at) in receipts {
        // remove: only the first receipt counts; a repeat (after a crash) is not a second delivery.
        if let Some(accepted) = answered.remove(&seq) {
            // A receipt before the answer is real (notifyd delivers right after the commit, before the
            // answer reaches the gateway): it counts as (near) zero.
            let _ = h.record((at.saturating_sub(accepted) / 1000).max(1));
        }
    }
    h
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepted_to_delivered_pairs_by_sequence_and_counts_first_receipt_only() {
        let answers = [(1, 1_000_000), (2, 2_000_000), (3, 3_000_000)];
        let receipts = [(2, 7_000_000), (1, 500_000), (2, 9_000_000), (99, 1)];
        let h = accepted_to_delivered(&answers, &receipts);
        assert_eq!(h.len(), 2);
        assert_eq!(h.max(), h.highest_equivalent(5_000));
        assert_eq!(h.min(), 1);
    }
}
