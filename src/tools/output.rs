//! How the tools print: aligned text tables for people (the default) or JSON for scripts
//! (`--output json`). Every command builds a [`Table`] (or a JSON value) and hands it here.

use serde_json::{Map, Value};

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    Table,
    Json,
}

/// Rows under named columns; JSON is an array of objects keyed by the column names in
/// lower_snake_case.
#[derive(Debug, Clone)]
pub struct Table {
    pub columns: Vec<&'static str>,
    pub rows: Vec<Vec<Value>>,
}

impl Table {
    pub fn new(columns: &[&'static str]) -> Table {
        Table {
            columns: columns.to_vec(),
            rows: Vec::new(),
        }
    }

    pub fn push(&mut self, row: Vec<Value>) {
        debug_assert_eq!(row.len(), self.columns.len());
        self.rows.push(row);
    }

    pub fn to_json(&self) -> Value {
        Value::Array(
            self.rows
                .iter()
                .map(|r| {
                    let mut m = Map::new();
                    for (c, v) in self.columns.iter().zip(r) {
                        m.insert(json_key(c), v.clone());
                    }
                    Value::Object(m)
                })
                .collect(),
        )
    }

    pub fn render(&self) -> String {
        let cells: Vec<Vec<String>> = self
            .rows
            .iter()
            .map(|r| r.iter().map(cell).collect())
            .collect();
        let mut widths: Vec<usize> = self.columns.iter().map(|c| c.len()).collect();
        for r in &cells {
            for (w, c) in widths.iter_mut().zip(r) {
                *w = (*w).max(c.chars().count());
            }
        }
        let mut out = String::new();
        let line = |out: &mut String, items: &[String]| {
            let n = items.len();
            for (i, (item, w)) in items.iter().zip(&widths).enumerate() {
                out.push_str(item);
                if i + 1 < n {
                    out.push_str(&" ".repeat(w - item.chars().count() + 2));
                }
            }
            out.push('\n');
        };
        let header: Vec<String> = self.columns.iter().map(|c| c.to_string()).collect();
        line(&mut out, &header);
        for r in &cells {
            line(&mut out, r);
        }
        out
    }

    pub fn print(&self, format: Format) {
        match format {
            Format::Table => print!("{}", self.render()),
            Format::Json => println!("{}", self.to_json()),
        }
    }
}

/// `LOG-END-OFFSET` → `log_end_offset`.
pub fn json_key(column: &str) -> String {
    column.to_ascii_lowercase().replace(['-', ' '], "_")
}

/// How a value reads in a table: strings bare, null as `-`, lists comma-separated.
pub fn cell(v: &Value) -> String {
    match v {
        Value::Null => "-".into(),
        Value::String(s) => s.clone(),
        Value::Array(a) => a.iter().map(cell).collect::<Vec<_>>().join(","),
        other => other.to_string(),
    }
}

/// Prints a JSON value, or for tables the human text.
pub fn print_json_or(format: Format, json: Value, text: impl FnOnce() -> String) {
    match format {
        Format::Json => println!("{json}"),
        Format::Table => print!("{}", text()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn tables_align_and_json_keys_are_snake_case() {
        let mut t = Table::new(&["TOPIC", "LOG-END-OFFSET"]);
        t.push(vec![json!("a"), json!(10)]);
        t.push(vec![json!("longer"), Value::Null]);
        assert_eq!(
            t.render(),
            "TOPIC   LOG-END-OFFSET\na       10\nlonger  -\n"
        );
        assert_eq!(
            t.to_json(),
            json!([{"topic": "a", "log_end_offset": 10}, {"topic": "longer", "log_end_offset": null}])
        );
    }
}
