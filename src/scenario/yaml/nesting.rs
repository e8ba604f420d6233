//! How deep `[` and `{` nest, found before the YAML parser sees the text.
//!
//! libyaml (under serde_yaml) walks every open flow collection at every token, so text
//! that opens `[` a hundred thousand times takes hours to refuse: the time grows with the
//! square of the depth. serde_yaml refuses anything nested past 128 levels anyway, so
//! refusing such text first changes only how fast, and in what words.
//!
//! To tell a `[` that opens a collection from one inside a scalar or a comment, the scan
//! follows libyaml's tokenizer: quoted scalars, block scalars (`|`, `>`) by their
//! indentation, plain scalars and their continuation lines, comments, anchors and tags.
//! Where libyaml would stop with a syntax error the scan carries on (the parser reports
//! that error); on text libyaml reads, it counts exactly the collections libyaml opens.

use super::super::path::Position;

/// Deepest flow nesting let through: serde_yaml's own recursion limit.
pub const MAX_DEPTH: usize = 128;

/// Where the first `[` or `{` nested deeper than [`MAX_DEPTH`] is, if any.
pub fn too_deep(text: &str) -> Option<Position> {
    Scan::new(text.as_bytes()).run().err()
}

struct Scan<'t> {
    text: &'t [u8],
    at: usize,
    line: usize,
    line_start: usize,
    /// libyaml's flow level, and the deepest it went.
    depth: usize,
    deepest: usize,
    /// libyaml's block indentation stack; -1 at the root.
    indents: Vec<isize>,
    /// libyaml's `simple_key_allowed`: a token here may start a `key:`.
    key_allowed: bool,
    /// Where the block-level simple key that a `:` would complete starts (line, column).
    key: Option<(usize, usize)>,
}

impl<'t> Scan<'t> {
    fn new(text: &'t [u8]) -> Self {
        Self {
            text,
            at: 0,
            line: 1,
            line_start: 0,
            depth: 0,
            deepest: 0,
            indents: vec![-1],
            key_allowed: true,
            key: None,
        }
    }

    /// The deepest flow nesting, or where it first went past [`MAX_DEPTH`].
    fn run(mut self) -> Result<usize, Position> {
        loop {
            self.skip_to_token();
            if self.at_end() {
                return Ok(self.deepest);
            }
            let column = self.column();
            if self.depth == 0 {
                while self.indent() > column as isize {
                    self.indents.pop();
                }
            }
            let c = self.peek(0);
            let before = self.at;
            self.token(c, column)?;
            // Every token takes at least one byte; should one not, the scan still ends.
            if self.at == before {
                self.at += 1;
            }
        }
    }

    /// One token starting with `c`, as libyaml's `fetch_next_token` tells them apart.
    fn token(&mut self, c: u8, column: usize) -> Result<(), Position> {
        if column == 0 && c == b'%' {
            self.skip_line();
            return Ok(());
        }
        if column == 0 && self.document_marker() {
            self.at += 3;
            if self.depth == 0 {
                self.indents.truncate(1);
            }
            self.key = None;
            self.key_allowed = false;
            return Ok(());
        }
        match c {
            b'[' | b'{' => {
                self.save_key();
                self.depth += 1;
                if self.depth > MAX_DEPTH {
                    return Err(self.position());
                }
                self.deepest = self.deepest.max(self.depth);
                self.at += 1;
                self.key_allowed = true;
            }
            b']' | b'}' => {
                self.depth = self.depth.saturating_sub(1);
                self.at += 1;
                self.key_allowed = false;
            }
            b',' => {
                self.at += 1;
                self.key_allowed = true;
            }
            b'-' if self.blankz_at(1) => {
                self.roll(column);
                self.at += 1;
                self.key_allowed = true;
            }
            b'?' if self.depth > 0 || self.blankz_at(1) => {
                self.roll(column);
                self.at += 1;
                self.key_allowed = self.depth == 0;
            }
            b':' if self.depth > 0 || self.blankz_at(1) => {
                match self.key.take() {
                    Some((line, key_column)) if line == self.line => self.roll(key_column),
                    _ => self.roll(column),
                }
                self.at += 1;
                self.key_allowed = self.depth == 0;
            }
            b'*' | b'&' => {
                self.save_key();
                self.at += 1;
                while is_anchor_char(self.peek(0)) {
                    self.at += 1;
                }
                self.key_allowed = false;
            }
            b'!' => {
                self.save_key();
                self.tag();
                self.key_allowed = false;
            }
            b'|' | b'>' if self.depth == 0 => self.block_scalar(),
            b'\'' | b'"' => {
                self.save_key();
                self.quoted(c);
                self.key_allowed = false;
            }
            _ if self.starts_plain(c) => self.plain(),
            // Nothing libyaml reads starts here: it stops at this character.
            _ => self.at += 1,
        }
        Ok(())
    }

    fn peek(&self, ahead: usize) -> u8 {
        self.text.get(self.at + ahead).copied().unwrap_or(0)
    }

    fn column(&self) -> usize {
        self.at - self.line_start
    }

    fn indent(&self) -> isize {
        self.indents.last().copied().unwrap_or(-1)
    }

    fn position(&self) -> Position {
        let line = &self.text[self.line_start..self.at];
        Position {
            line: self.line,
            column: String::from_utf8_lossy(line).chars().count() + 1,
        }
    }

    /// A block collection starts at `column` unless one is open there already.
    fn roll(&mut self, column: usize) {
        if self.depth == 0 && self.indent() < column as isize {
            self.indents.push(column as isize);
        }
    }

    fn save_key(&mut self) {
        if self.depth == 0 && self.key_allowed {
            self.key = Some((self.line, self.column()));
        }
    }

    /// The length of the line break here (libyaml's: CR, LF, CRLF, NEL, LS, PS), or 0.
    fn break_len(&self) -> usize {
        match (self.peek(0), self.peek(1), self.peek(2)) {
            (b'\r', b'\n', _) | (0xC2, 0x85, _) => 2,
            (b'\r' | b'\n', _, _) => 1,
            (0xE2, 0x80, 0xA8 | 0xA9) => 3,
            _ => 0,
        }
    }

    /// A blank, a line break of any kind or the end, `ahead` bytes on.
    fn blankz_at(&self, ahead: usize) -> bool {
        let c = self.peek(ahead);
        is_blankz(c)
            || (c == 0xC2 && self.peek(ahead + 1) == 0x85)
            || (c == 0xE2
                && self.peek(ahead + 1) == 0x80
                && matches!(self.peek(ahead + 2), 0xA8 | 0xA9))
    }

    fn at_break(&self) -> bool {
        self.break_len() > 0
    }

    fn newline(&mut self) {
        self.at += self.break_len();
        self.line += 1;
        self.line_start = self.at;
    }

    fn at_end(&self) -> bool {
        self.at >= self.text.len()
    }

    fn skip_line(&mut self) {
        while !self.at_end() && !self.at_break() {
            self.at += 1;
        }
    }

    /// `---` or `...` and a blank: only at the start of a line.
    fn document_marker(&self) -> bool {
        let three = |c| self.peek(0) == c && self.peek(1) == c && self.peek(2) == c;
        (three(b'-') || three(b'.')) && self.blankz_at(3)
    }

    /// libyaml's `scan_to_next_token`: blanks, comments and line breaks.
    fn skip_to_token(&mut self) {
        loop {
            if self.column() == 0 && self.text[self.at..].starts_with("\u{feff}".as_bytes()) {
                self.at += 3;
            }
            while self.peek(0) == b' '
                || ((self.depth > 0 || !self.key_allowed) && self.peek(0) == b'\t')
            {
                self.at += 1;
            }
            if self.peek(0) == b'#' {
                self.skip_line();
            }
            if !self.at_break() {
                return;
            }
            self.newline();
            if self.depth == 0 {
                self.key_allowed = true;
            }
        }
    }

    /// Whether libyaml starts a plain scalar at `c` (checked after every other token).
    fn starts_plain(&self, c: u8) -> bool {
        let indicator = is_blankz(c) || b"-?:,[]{}#&*!|>'\"%@`".contains(&c);
        !indicator
            || (c == b'-' && !matches!(self.peek(1), b' ' | b'\t'))
            || (self.depth == 0 && matches!(c, b'?' | b':') && !self.blankz_at(1))
    }

    /// libyaml's `scan_plain_scalar`: words, and in the block context the lines indented
    /// past the enclosing collection.
    fn plain(&mut self) {
        self.save_key();
        let indent = self.indent() + 1;
        let mut multiline = false;
        loop {
            if (self.column() == 0 && self.document_marker()) || self.peek(0) == b'#' {
                break;
            }
            while !self.at_end() && !is_blankz(self.peek(0)) && !self.at_break() {
                let c = self.peek(0);
                let flow_end = self.depth > 0 && b",[]{}".contains(&c);
                let value = c == b':'
                    && (self.blankz_at(1) || (self.depth > 0 && b",?[]{}".contains(&self.peek(1))));
                if flow_end || value {
                    break;
                }
                self.at += 1;
            }
            if !(matches!(self.peek(0), b' ' | b'\t') || self.at_break()) {
                break;
            }
            while matches!(self.peek(0), b' ' | b'\t') || self.at_break() {
                if self.at_break() {
                    self.newline();
                    multiline = true;
                } else {
                    self.at += 1;
                }
            }
            if self.depth == 0 && (self.column() as isize) < indent {
                break;
            }
        }
        self.key_allowed = multiline;
    }

    /// A single- or double-quoted scalar, which may span lines.
    fn quoted(&mut self, quote: u8) {
        self.at += 1;
        while !self.at_end() {
            if self.at_break() {
                self.newline();
                continue;
            }
            let c = self.peek(0);
            match (quote, c) {
                (b'\'', b'\'') if self.peek(1) == b'\'' => self.at += 2,
                (b'"', b'\\') => {
                    self.at += 1;
                    if self.at_break() {
                        self.newline();
                    } else if !self.at_end() {
                        self.at += 1;
                    }
                }
                _ if c == quote => {
                    self.at += 1;
                    return;
                }
                _ => self.at += 1,
            }
        }
    }

    /// `!tag` or `!<verbatim tag>`.
    fn tag(&mut self) {
        if self.peek(1) == b'<' {
            self.at += 2;
            while !self.at_end() && !is_blankz(self.peek(0)) && self.peek(0) != b'>' {
                self.at += 1;
            }
            if self.peek(0) == b'>' {
                self.at += 1;
            }
            return;
        }
        self.at += 1;
        while is_anchor_char(self.peek(0)) || b";/?:@&=+$.%!~*'()".contains(&self.peek(0)) {
            self.at += 1;
        }
    }

    /// libyaml's `scan_block_scalar`: the header line, then every line indented at least
    /// as far as the content (given, or taken from the first line that has any), and
    /// blank lines.
    fn block_scalar(&mut self) {
        self.key = None;
        self.at += 1;
        let mut increment = 0;
        for _ in 0..2 {
            match self.peek(0) {
                b'+' | b'-' => self.at += 1,
                digit @ b'1'..=b'9' => {
                    increment = isize::from(digit - b'0');
                    self.at += 1;
                }
                _ => {}
            }
        }
        self.skip_line();
        self.key_allowed = true;
        if self.at_end() {
            return;
        }
        self.newline();
        let parent = self.indent();
        let mut indent = match increment {
            0 => 0,
            _ => parent.max(0) + increment,
        };
        if indent == 0 {
            let mut deepest = 0;
            loop {
                while self.peek(0) == b' ' {
                    self.at += 1;
                }
                deepest = deepest.max(self.column() as isize);
                if !self.at_break() {
                    break;
                }
                self.newline();
            }
            indent = deepest.max(parent + 1).max(1);
        }
        loop {
            while (self.column() as isize) < indent && self.peek(0) == b' ' {
                self.at += 1;
            }
            if self.at_end() || ((self.column() as isize) < indent && !self.at_break()) {
                return;
            }
            self.skip_line();
            if self.at_end() {
                return;
            }
            self.newline();
        }
    }
}

fn is_blankz(c: u8) -> bool {
    matches!(c, b' ' | b'\t' | b'\r' | b'\n' | 0)
}

/// libyaml's `IS_ALPHA`: what an anchor name or a tag handle is made of.
fn is_anchor_char(c: u8) -> bool {
    c.is_ascii_alphanumeric() || c == b'_' || c == b'-'
}

#[cfg(test)]
mod tests {
    use super::*;

    fn depth_ok(text: &str) -> bool {
        too_deep(text).is_none()
    }

    fn nested(open: &str, n: usize) -> String {
        open.repeat(n)
    }

    #[test]
    fn deep_flow_collections_are_found_where_they_pass_the_limit() {
        let text = format!("name: x\nclients: {}", nested("[", 100_000));
        assert_eq!(
            too_deep(&text),
            Some(Position {
                line: 2,
                column: 10 + MAX_DEPTH
            })
        );
        let text = format!("a: {}", nested("{b: ", 200));
        assert!(too_deep(&text).is_some());
        let lines = format!("a:\n{}", nested("  [\n", 200));
        assert_eq!(too_deep(&lines).map(|p| p.line), Some(MAX_DEPTH + 2));
        assert!(depth_ok(&nested("[", MAX_DEPTH)));
        assert!(!depth_ok(&nested("[", MAX_DEPTH + 1)));
    }

    #[test]
    fn brackets_inside_scalars_and_comments_do_not_count() {
        let many = nested("[", 500);
        for text in [
            format!("reason: \"{many}\"\n"),
            format!("reason: '{many}'\n"),
            format!("reason: 'it''s {many}'\n"),
            format!("reason: \"a \\\" {many}\"\n"),
            format!("# {many}\nname: x\n"),
            format!("name: x # {many}\n"),
            format!("reason: a {many}\n"),
            format!("reason: |\n  {many}\n  more\nname: x\n"),
            format!("reason: >-\n\n   {many}\nname: x\n"),
            format!("- reason: a\n  b {many}\n"),
            format!("- a\n  '{many}\n"),
            format!("x: [a'b, c\"d, {{e: f}}]\nreason: \"{many}\"\n"),
            format!("x: [\"]]]\", '}}', # ]]]\n  1]\nreason: a{many}\n"),
            format!("x: !<tag:[[> [1]\nreason: a{many}\n"),
        ] {
            assert!(depth_ok(&text), "{text}");
        }
    }

    #[test]
    fn quotes_only_open_where_a_token_starts() {
        // Inside a flow collection a quote in the middle of a plain scalar is text, so the
        // brackets after it are real.
        let text = format!("x: [a\", {}", nested("[", 200));
        assert!(!depth_ok(&text));
        let text = format!("x: [&anchor \"]]]]\", {}", nested("[", 200));
        assert!(!depth_ok(&text));
        // Closing brackets in scalars and comments close nothing.
        let text = format!(
            "x: {}\"]]]\", '}}}}', # ]]]\n {}",
            nested("[", 100),
            nested("[", 100)
        );
        assert!(!depth_ok(&text));
        // A block scalar ends where its indentation does; what follows is YAML again.
        let text = format!("a: |\n  \"\nb: {}", nested("[", 200));
        assert!(!depth_ok(&text));
        let text = format!("- a: |\n    \"\n  b: {}", nested("[", 200));
        assert!(!depth_ok(&text));
        // A plain scalar's next line at the enclosing collection's indentation is a key.
        let text = format!("a: b\n'c': {}", nested("[", 200));
        assert!(!depth_ok(&text));
    }

    #[test]
    fn every_line_break_libyaml_knows_ends_a_token() {
        // NEL, LS and PS are line breaks to libyaml: `:` before one is a value indicator.
        for text in [
            "a:\u{85}",
            "a:\u{2028}b",
            "? \u{2029}",
            "-\u{85}-\u{85}",
            ":\u{85}:",
        ] {
            assert_eq!(Scan::new(text.as_bytes()).run(), Ok(0), "{text:?}");
        }
        let text = format!("a:\u{2028}{}", nested("[", 200));
        assert!(!depth_ok(&text));
    }

    #[test]
    fn the_shipped_scenarios_nest_as_they_read() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("scenarios");
        let mut deepest = 0;
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.extension().is_some_and(|e| e == "yaml") {
                let text = std::fs::read_to_string(&path).unwrap();
                let scan = Scan::new(text.as_bytes()).run();
                assert!(matches!(scan, Ok(0..=2)), "{}: {scan:?}", path.display());
                deepest = deepest.max(scan.unwrap());
            }
        }
        assert_eq!(
            deepest, 2,
            "some scenario lists connections inside a flow map"
        );
        assert_eq!(
            Scan::new(b"a: [{b: [1]}, {c: 2}]\nd: {e: f}\n").run(),
            Ok(3)
        );
    }
}
