//! Plain-text search: out-of-contract literals with line and column.

use crate::{Rules, Violation, rule};

/// Lines carrying this marker may name out-of-contract values (for example a
/// migration note that must quote the old hostname).
pub const ALLOW_LINE: &str = "flywheel: allow";
/// Within a file's first 1 KiB: the whole file may (the generated contract).
pub const ALLOW_FILE: &str = "flywheel: allow-file";

pub(crate) struct LineIndex<'a> {
    text: &'a [u8],
    /// Line number and start offset of the last line we moved to.
    line: u32,
    start: usize,
}

impl<'a> LineIndex<'a> {
    pub fn new(text: &'a [u8]) -> Self {
        LineIndex {
            text,
            line: 1,
            start: 0,
        }
    }

    /// Line and 1-based character column of `offset`; offsets must not go
    /// backwards between calls (matches arrive in order).
    pub fn locate(&mut self, offset: usize) -> (u32, u32, &'a [u8]) {
        let offset = offset.min(self.text.len());
        if offset >= self.start {
            let newlines = memchr::memchr_iter(b'\n', &self.text[self.start..offset]).count();
            self.line += u32::try_from(newlines).unwrap_or(u32::MAX);
            if let Some(last) = memchr::memrchr(b'\n', &self.text[self.start..offset]) {
                self.start += last + 1;
            }
        }
        let prefix = &self.text[self.start..offset];
        let column = String::from_utf8_lossy(prefix).chars().count() as u32 + 1;
        let end =
            memchr::memchr(b'\n', &self.text[offset..]).map_or(self.text.len(), |e| offset + e);
        (self.line, column, &self.text[self.start..end])
    }
}

pub(crate) fn line_text(line: &[u8]) -> String {
    String::from_utf8_lossy(line)
        .trim_end_matches('\r')
        .to_string()
}

pub(crate) fn file_allows_all(text: &[u8]) -> bool {
    let head = &text[..text.len().min(1024)];
    memchr::memmem::find(head, ALLOW_FILE.as_bytes()).is_some()
}

/// Appends a violation for every out-of-contract literal in `text`.
pub(crate) fn out_of_contract(rules: &Rules, file: &str, text: &[u8], out: &mut Vec<Violation>) {
    let Some(ac) = &rules.automaton else {
        return;
    };
    let mut index = LineIndex::new(text);
    for m in ac.find_iter(text) {
        let (line, column, line_bytes) = index.locate(m.start());
        if memchr::memmem::find(line_bytes, ALLOW_LINE.as_bytes()).is_some() {
            continue;
        }
        let Some(needle) = rules.needles.get(m.pattern().as_usize()) else {
            continue;
        };
        out.push(Violation {
            file: file.to_string(),
            line,
            column,
            rule: rule::OUT_OF_CONTRACT,
            severity: needle.severity,
            value: needle.value.clone(),
            message: format!("`{}` is out of contract: {}", needle.value, needle.reason),
            replacement: needle.replacement.clone(),
            excerpt: line_text(line_bytes),
        });
    }
}
