//! csvstats: group a CSV by one column and aggregate a numeric column, resumably.
//!
//! Job "aggregate" takes `{"csv": "<text>", "group_by": "region", "sum": "amount"}`
//! (optional: `"delimiter": ";"`, `"checkpoint_every": 100`, `"result_key": "..."`).
//! It reads the header, then one record at a time; the state holds the byte
//! offset of the next record and the partial aggregates, so an interrupted run
//! resumes mid-file and ends with the same numbers as an uninterrupted one.
//!
//! The result (the final state, MessagePack) has per-group `count`, `sum`,
//! `min` and `max`, the rows read and skipped, and `previous`: the summary the
//! last run stored in the host's key-value store under `result_key`, which this
//! run then replaces with its own.

use std::collections::BTreeMap;

use wasmjob_sdk::prelude::*;

#[extension(
    id = "csvstats",
    name = "CSV stats",
    version = "0.1.0",
    jobs = [aggregate],
    state = "msgpack"
)]
struct CsvStats;

/// Aggregates of the `sum` column over the rows of one group.
#[derive(Serialize, Deserialize, Default, Clone, Debug, PartialEq)]
struct Group {
    count: u64,
    sum: f64,
    min: f64,
    max: f64,
}

impl Group {
    fn add(&mut self, value: f64) {
        if self.count == 0 || value < self.min {
            self.min = value;
        }
        if self.count == 0 || value > self.max {
            self.max = value;
        }
        self.count += 1;
        self.sum += value;
    }
}

/// Parameters and progress in one value: what a resumed run needs, nothing more.
#[derive(Serialize, Deserialize)]
#[serde(default)]
struct Aggregation {
    csv: String,
    group_by: String,
    sum: String,
    delimiter: String,
    checkpoint_every: u64,
    result_key: String,
    /// Column indexes, set once the header is read.
    group_col: Option<u64>,
    sum_col: Option<u64>,
    /// Byte offset of the next record in `csv`.
    offset: u64,
    rows: u64,
    skipped: u64,
    groups: BTreeMap<String, Group>,
    previous: Option<String>,
    done: bool,
}

impl Default for Aggregation {
    fn default() -> Self {
        Aggregation {
            csv: String::new(),
            group_by: String::new(),
            sum: String::new(),
            delimiter: ",".to_owned(),
            checkpoint_every: 100,
            result_key: "csvstats:last".to_owned(),
            group_col: None,
            sum_col: None,
            offset: 0,
            rows: 0,
            skipped: 0,
            groups: BTreeMap::new(),
            previous: None,
            done: false,
        }
    }
}

/// What goes to the key-value store at the end.
#[derive(Serialize)]
struct Summary<'a> {
    group_by: &'a str,
    sum: &'a str,
    rows: u64,
    skipped: u64,
    groups: usize,
    total: f64,
}

const MAX_WARNINGS: u64 = 10;

#[job(name = "aggregate")]
fn aggregate(ctx: &JobContext, st: &mut Aggregation) -> Result<()> {
    if st.done {
        return Ok(());
    }
    let delim = match st.delimiter.as_bytes() {
        [d] if *d != b'"' && *d != b'\n' && *d != b'\r' => *d,
        _ => bail!("`delimiter` must be one ASCII character other than a quote or line break"),
    };
    let (group_col, sum_col) = match (st.group_col, st.sum_col) {
        (Some(g), Some(s)) => (g as usize, s as usize),
        _ => start(ctx, st, delim)?,
    };
    let every = st.checkpoint_every.max(1);
    let total = st.csv.len();

    while (st.offset as usize) < total {
        ctx.check()?; // the state is consistent here: a resume re-reads from `offset`
        let start_at = st.offset as usize;
        let (record, next) = read_record(&st.csv, start_at, delim)?;
        st.offset = next as u64;
        ctx.increment_bytes((next - start_at) as u64);
        if record.len() == 1 && record[0].is_empty() {
            continue; // a blank line
        }
        st.rows += 1;
        ctx.increment_items(1);
        match (record.get(group_col), record.get(sum_col).map(|v| v.trim().parse::<f64>())) {
            (Some(key), Some(Ok(value))) if value.is_finite() => {
                st.groups.entry(key.clone()).or_default().add(value);
            }
            _ => {
                st.skipped += 1;
                if st.skipped <= MAX_WARNINGS {
                    ctx.add_warning(format!("row {}: no number in column {:?}; skipped", st.rows, st.sum));
                }
            }
        }
        if st.rows % every == 0 {
            ctx.report_progress(next as f32 / total as f32, format!("{} rows", st.rows));
            ctx.checkpoint(st)?;
        }
    }
    finish(ctx, st)
}

/// First run: resolve the columns from the header and remember the last summary.
fn start(ctx: &JobContext, st: &mut Aggregation, delim: u8) -> Result<(usize, usize)> {
    if st.group_by.is_empty() || st.sum.is_empty() {
        bail!("parameters need \"csv\", \"group_by\" and \"sum\" (column names)");
    }
    if st.csv.is_empty() {
        bail!("\"csv\" is empty: it must hold a header line and rows");
    }
    let (header, next) = read_record(&st.csv, 0, delim)?;
    let column = |name: &str| -> Result<usize> {
        header.iter().position(|h| h.trim() == name).ok_or_else(|| {
            Error::msg(format!("no column {:?} in the header (columns: {})", name, header.join(", ")))
        })
    };
    let (g, s) = (column(&st.group_by)?, column(&st.sum)?);
    st.group_col = Some(g as u64);
    st.sum_col = Some(s as u64);
    st.offset = next as u64;
    st.previous = ctx.kv_get_str(&st.result_key)?; // the summary's JSON text, as stored
    ctx.info(format!("csvstats: {} bytes, grouping by {:?}, summing {:?}", st.csv.len(), st.group_by, st.sum));
    Ok((g, s))
}

/// Store the summary under `result_key` and drop the input from the result.
fn finish(ctx: &JobContext, st: &mut Aggregation) -> Result<()> {
    let summary = Summary {
        group_by: &st.group_by,
        sum: &st.sum,
        rows: st.rows,
        skipped: st.skipped,
        groups: st.groups.len(),
        total: st.groups.values().map(|g| g.sum).sum(),
    };
    let text = wasmjob_sdk::serde_json::to_string(&summary)?;
    ctx.kv_set(&st.result_key, &summary)?; // stored as its JSON text
    ctx.report_progress(1.0, format!("{} rows in {} groups", st.rows, st.groups.len()));
    ctx.info(format!("csvstats: done: {}", text));
    st.csv = String::new();
    st.done = true;
    Ok(())
}

/// One RFC 4180 record from `pos`: its fields and the offset after its line
/// break. Quoted fields may hold delimiters, line breaks and doubled quotes.
fn read_record(text: &str, pos: usize, delim: u8) -> Result<(Vec<String>, usize)> {
    let b = text.as_bytes();
    let mut i = pos;
    let mut fields = Vec::new();
    loop {
        let mut field = Vec::new();
        if i < b.len() && b[i] == b'"' {
            let opened = i;
            i += 1;
            loop {
                match b.get(i) {
                    None => bail!("unterminated quoted field at byte {}", opened),
                    Some(b'"') if b.get(i + 1) == Some(&b'"') => {
                        field.push(b'"');
                        i += 2;
                    }
                    Some(b'"') => {
                        i += 1;
                        break;
                    }
                    Some(c) => {
                        field.push(*c);
                        i += 1;
                    }
                }
            }
        }
        while i < b.len() && b[i] != delim && b[i] != b'\n' && b[i] != b'\r' {
            field.push(b[i]);
            i += 1;
        }
        // Splits happen only at ASCII bytes, so each field is whole UTF-8.
        fields.push(String::from_utf8(field).map_err(|_| Error::msg("the CSV is not UTF-8"))?);
        match b.get(i) {
            Some(c) if *c == delim => i += 1,
            Some(b'\r') if b.get(i + 1) == Some(&b'\n') => return Ok((fields, i + 2)),
            Some(_) => return Ok((fields, i + 1)),
            None => return Ok((fields, i)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::read_record;

    #[test]
    fn quoted_fields_keep_delimiters_quotes_and_line_breaks() {
        let text = "a,\"b,\"\"c\"\"\nd\",e\r\nnext";
        let (fields, next) = read_record(text, 0, b',').unwrap();
        assert_eq!(fields, vec!["a", "b,\"c\"\nd", "e"]);
        assert_eq!(&text[next..], "next");
    }
}
