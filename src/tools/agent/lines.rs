//! Cutting the bytes read from a file into records: one record per line (the `\n` and a `\r`
//! before it removed), or with a multi-line start pattern, a line that matches and the lines
//! after it that do not (a stack trace under its message). A record longer than the limit is
//! cut into pieces of the limit (each piece a record, counted as split). Pure: no I/O.

use regex::bytes::Regex;

/// One record: `buf[start..end]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Piece {
    pub start: usize,
    pub end: usize,
    /// A piece of a record longer than the limit.
    pub split: bool,
}

/// What [`split`] found.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Cut {
    pub pieces: Vec<Piece>,
    /// Bytes of `buf` the pieces account for: the next read starts here.
    pub consumed: usize,
    /// Lines seen (complete ones).
    pub lines: u64,
}

/// Cuts `buf` into records of at most `max` bytes.
///
/// A trailing incomplete line waits for its end, unless `at_end` (the file is finished: rotated
/// away and read to its end) — or it is already `max` long, then whole pieces of it go now. A
/// multi-line record whose continuation may still come waits likewise, unless `at_end` or
/// `idle` (the file has not grown for a while).
pub fn split(buf: &[u8], multiline: Option<&Regex>, max: usize, idle: bool, at_end: bool) -> Cut {
    let max = max.max(1);
    let mut cut = Cut::default();
    let mut record: Option<usize> = None;
    let mut i = 0;
    while let Some(n) = buf[i..].iter().position(|&b| b == b'\n') {
        let line_end = i + n;
        let next = line_end + 1;
        cut.lines += 1;
        match multiline {
            None => {
                emit(&mut cut.pieces, buf, i, line_end, max);
                cut.consumed = next;
            }
            Some(re) => {
                let starts = re.is_match(&buf[i..line_end]);
                if starts || record.is_none() {
                    if let Some(s) = record {
                        emit(&mut cut.pieces, buf, s, i - 1, max);
                        cut.consumed = i;
                    }
                    record = Some(i);
                }
                let s = record.expect("invariant: set above");
                if line_end - s > max {
                    emit(&mut cut.pieces, buf, s, line_end, max);
                    cut.consumed = next;
                    record = None;
                }
            }
        }
        i = next;
    }
    if let Some(s) = record {
        if !(idle || at_end) {
            return cut;
        }
        emit(&mut cut.pieces, buf, s, i - 1, max);
        cut.consumed = i;
    }
    // The incomplete last line.
    let rest = buf.len() - i;
    if at_end && rest > 0 {
        emit(&mut cut.pieces, buf, i, buf.len(), max);
        cut.consumed = buf.len();
    } else if rest >= max {
        let whole = rest / max * max;
        emit(&mut cut.pieces, buf, i, i + whole, max);
        if let Some(p) = cut.pieces.last_mut() {
            p.split = true;
        }
        cut.consumed = i + whole;
    }
    cut
}

/// Pushes `buf[start..end]` (without a trailing `\r`) as one record, or as pieces of `max`.
fn emit(pieces: &mut Vec<Piece>, buf: &[u8], start: usize, end: usize, max: usize) {
    let end = if end > start && buf[end - 1] == b'\r' {
        end - 1
    } else {
        end
    };
    if end - start <= max {
        pieces.push(Piece {
            start,
            end,
            split: false,
        });
        return;
    }
    let mut s = start;
    while s < end {
        let e = (s + max).min(end);
        pieces.push(Piece {
            start: s,
            end: e,
            split: true,
        });
        s = e;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn texts(buf: &[u8], cut: &Cut) -> Vec<String> {
        cut.pieces
            .iter()
            .map(|p| String::from_utf8_lossy(&buf[p.start..p.end]).into_owned())
            .collect()
    }

    #[test]
    fn lines_and_a_waiting_tail() {
        let buf = b"one\ntwo\r\nthr";
        let cut = split(buf, None, 100, false, false);
        assert_eq!(texts(buf, &cut), ["one", "two"]);
        assert_eq!(cut.consumed, 9);
        let cut = split(buf, None, 100, false, true);
        assert_eq!(texts(buf, &cut), ["one", "two", "thr"]);
        assert_eq!(cut.consumed, buf.len());
    }

    #[test]
    fn empty_lines_are_records() {
        let buf = b"\n\nx\n";
        assert_eq!(
            texts(buf, &split(buf, None, 10, false, false)),
            ["", "", "x"]
        );
    }

    #[test]
    fn long_lines_are_cut_into_pieces() {
        let buf = b"abcdefg\nhi\n";
        let cut = split(buf, None, 3, false, false);
        assert_eq!(texts(buf, &cut), ["abc", "def", "g", "hi"]);
        assert_eq!(cut.pieces.iter().filter(|p| p.split).count(), 3);
        // An unterminated line already longer than the limit goes out in whole pieces.
        let buf = b"abcdefg";
        let cut = split(buf, None, 3, false, false);
        assert_eq!(texts(buf, &cut), ["abc", "def"]);
        assert_eq!(cut.consumed, 6);
    }

    #[test]
    fn multiline_records_by_start_pattern() {
        let re = Regex::new(r"^\d").expect("regex");
        let buf = b"1 error\n  at a\n  at b\n2 ok\n  more";
        let cut = split(buf, Some(&re), 100, false, false);
        assert_eq!(texts(buf, &cut), ["1 error\n  at a\n  at b"]);
        assert_eq!(cut.consumed, 22);
        // Idle: the last complete record goes too; the unterminated line still waits.
        let cut = split(buf, Some(&re), 100, true, false);
        assert_eq!(texts(buf, &cut), ["1 error\n  at a\n  at b", "2 ok"]);
        assert_eq!(cut.consumed, 27);
        let cut = split(buf, Some(&re), 100, false, true);
        assert_eq!(
            texts(buf, &cut),
            ["1 error\n  at a\n  at b", "2 ok", "  more"]
        );
    }

    #[test]
    fn a_multiline_record_over_the_limit_is_cut() {
        let re = Regex::new(r"^S").expect("regex");
        let buf = b"S123\n4567\n89\nS\n";
        let cut = split(buf, Some(&re), 6, false, false);
        assert_eq!(texts(buf, &cut), ["S123\n4", "567", "89"]);
        assert_eq!(cut.consumed, 13);
    }

    #[test]
    fn binary_content_is_kept() {
        let buf = b"\x00\xff\xfe\n";
        let cut = split(buf, None, 10, false, false);
        assert_eq!(cut.pieces.len(), 1);
        assert_eq!(
            &buf[cut.pieces[0].start..cut.pieces[0].end],
            b"\x00\xff\xfe"
        );
    }
}
