//! The lexer: strings, dollar-quoted bodies, quoted identifiers and
//! comments are opaque tokens; statements split on `;` outside them.

use super::Span;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum K {
    Word,
    /// Quoted identifier, normalized to `"…"`.
    Ident,
    Str,
    Num,
    Param,
    Punct,
    /// Unterminated string, identifier or comment.
    Bad,
}

#[derive(Debug, Clone)]
pub(super) struct Tok {
    pub(super) k: K,
    pub(super) text: String,
    /// Whitespace before the token in the output (comments become a space).
    pub(super) ws: String,
    pub(super) start: usize,
    pub(super) end: usize,
}

impl Tok {
    pub(super) fn new(k: K, text: impl Into<String>, ws: &str) -> Tok {
        Tok {
            k,
            text: text.into(),
            ws: ws.to_string(),
            start: 0,
            end: 0,
        }
    }
    pub(super) fn is(&self, kw: &str) -> bool {
        self.k == K::Word && self.text.eq_ignore_ascii_case(kw)
    }
    pub(super) fn punct(&self, p: &str) -> bool {
        self.k == K::Punct && self.text == p
    }
    pub(super) fn upper(&self) -> String {
        self.text.to_ascii_uppercase()
    }
    /// An identifier's name for lookups (case-insensitive).
    pub(super) fn name_key(&self) -> String {
        match self.k {
            K::Ident => self.text[1..self.text.len() - 1]
                .replace("\"\"", "\"")
                .to_lowercase(),
            _ => self.text.to_lowercase(),
        }
    }
    pub(super) fn is_name(&self) -> bool {
        matches!(self.k, K::Word | K::Ident)
    }
}

pub(super) fn quote_ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

pub(super) fn lex(s: &str) -> Vec<Tok> {
    let b = s.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    let mut ws = String::new();
    // Finds the closing `close` (doubled = escaped) from `from`.
    let close_at = |from: usize, close: u8, doubled: bool| -> Option<usize> {
        let mut j = from;
        while j < b.len() {
            if b[j] == close {
                if doubled && j + 1 < b.len() && b[j + 1] == close {
                    j += 2;
                    continue;
                }
                return Some(j);
            }
            j += 1;
        }
        None
    };
    while i < b.len() {
        let c = b[i];
        let start = i;
        let (k, text): (K, String) = if c.is_ascii_whitespace() {
            while i < b.len() && b[i].is_ascii_whitespace() {
                i += 1;
            }
            ws.push_str(&s[start..i]);
            continue;
        } else if c == b'-' && b.get(i + 1) == Some(&b'-') {
            while i < b.len() && b[i] != b'\n' {
                i += 1;
            }
            if ws.is_empty() {
                ws.push(' ');
            }
            continue;
        } else if c == b'/' && b.get(i + 1) == Some(&b'*') {
            match s[i + 2..].find("*/") {
                Some(p) => {
                    i = i + 2 + p + 2;
                    if ws.is_empty() {
                        ws.push(' ');
                    }
                    continue;
                }
                None => {
                    i = b.len();
                    (K::Bad, "unterminated /* comment".into())
                }
            }
        } else if c == b'\'' {
            match close_at(i + 1, b'\'', true) {
                Some(j) => {
                    i = j + 1;
                    (K::Str, s[start..i].to_string())
                }
                None => {
                    i = b.len();
                    (K::Bad, "unterminated string literal".into())
                }
            }
        } else if c == b'$' && dollar_tag(&s[i..]).is_some() {
            let tag = dollar_tag(&s[i..]).unwrap_or_default();
            match s[i + tag.len()..].find(tag.as_str()) {
                Some(p) => {
                    i = i + tag.len() + p + tag.len();
                    (K::Str, s[start..i].to_string())
                }
                None => {
                    i = b.len();
                    (K::Bad, "unterminated dollar-quoted string".into())
                }
            }
        } else if c == b'"' || c == b'`' {
            match close_at(i + 1, c, true) {
                Some(j) => {
                    i = j + 1;
                    let inner = &s[start + 1..j];
                    let name = match c {
                        b'"' => inner.replace("\"\"", "\""),
                        _ => inner.replace("``", "`"),
                    };
                    (K::Ident, quote_ident(&name))
                }
                None => {
                    i = b.len();
                    (K::Bad, "unterminated quoted identifier".into())
                }
            }
        } else if c.is_ascii_digit() || (c == b'.' && b.get(i + 1).is_some_and(u8::is_ascii_digit))
        {
            i += 1;
            while i < b.len()
                && (b[i].is_ascii_alphanumeric()
                    || b[i] == b'.'
                    || ((b[i] == b'+' || b[i] == b'-') && matches!(b[i - 1], b'e' | b'E')))
            {
                i += 1;
            }
            (K::Num, s[start..i].to_string())
        } else if c == b'?'
            || ((c == b':' || c == b'@' || c == b'$')
                && b.get(i + 1)
                    .is_some_and(|n| n.is_ascii_alphanumeric() || *n == b'_'))
        {
            i += 1;
            while i < b.len() && (b[i].is_ascii_alphanumeric() || b[i] == b'_') {
                i += 1;
            }
            (K::Param, s[start..i].to_string())
        } else if c.is_ascii_alphabetic() || c == b'_' || c >= 0x80 {
            while i < b.len()
                && (b[i].is_ascii_alphanumeric() || b[i] == b'_' || b[i] >= 0x80 || b[i] == b'$')
            {
                i += 1;
            }
            (K::Word, s[start..i].to_string())
        } else {
            let two = s.get(i..i + 2).unwrap_or("");
            if matches!(
                two,
                "::" | "||" | "<=" | ">=" | "<>" | "!=" | "==" | "<<" | ">>"
            ) {
                i += 2;
                (K::Punct, if two == "==" { "=".into() } else { two.into() })
            } else {
                let ch = s[i..].chars().next().unwrap_or(' ');
                i += ch.len_utf8();
                (K::Punct, ch.to_string())
            }
        };
        out.push(Tok {
            k,
            text,
            ws: std::mem::take(&mut ws),
            start,
            end: i,
        });
    }
    out
}

/// Statements: tokens between `;`.
pub(super) fn split(toks: &[Tok]) -> Vec<Vec<Tok>> {
    let mut out = Vec::new();
    let mut cur: Vec<Tok> = Vec::new();
    for t in toks {
        if t.punct(";") {
            if !cur.is_empty() {
                out.push(std::mem::take(&mut cur));
            }
            continue;
        }
        cur.push(t.clone());
    }
    if !cur.is_empty() {
        out.push(cur);
    }
    for stmt in &mut out {
        if let Some(first) = stmt.first_mut() {
            first.ws.clear();
        }
    }
    out
}

/// `$tag$` (or `$$`) at the start of `s`.
pub(super) fn dollar_tag(s: &str) -> Option<String> {
    let rest = s.strip_prefix('$')?;
    let end = rest.find('$')?;
    let tag = &rest[..end];
    let ok = tag
        .chars()
        .enumerate()
        .all(|(i, c)| c == '_' || c.is_ascii_alphabetic() || (i > 0 && c.is_ascii_digit()));
    ok.then(|| format!("${tag}$"))
}

pub(super) fn span(s: &str, start: usize, end: usize) -> Span {
    let pos = |off: usize| {
        let before = &s[..off];
        let line = before.matches('\n').count() as u32 + 1;
        let col = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) as u32 + 1;
        (line, col)
    };
    let (start_line, start_column) = pos(start);
    let last = s[..end]
        .char_indices()
        .next_back()
        .map_or(start, |(i, _)| i);
    let (end_line, end_column) = pos(last.max(start));
    Span {
        start_line,
        start_column,
        end_line,
        end_column,
    }
}

pub(super) fn render(toks: &[Tok]) -> String {
    let mut out = String::new();
    for (i, t) in toks.iter().enumerate() {
        if i > 0 {
            out.push_str(&t.ws);
        }
        out.push_str(&t.text);
    }
    out
}

/// Index of the `)` matching the `(` at `open`.
pub(super) fn close_paren(toks: &[Tok], open: usize) -> Option<usize> {
    let mut depth = 0usize;
    for (i, t) in toks.iter().enumerate().skip(open) {
        if t.punct("(") {
            depth += 1;
        } else if t.punct(")") {
            depth -= 1;
            if depth == 0 {
                return Some(i);
            }
        }
    }
    None
}

/// Splits on commas outside parentheses.
pub(super) fn split_commas(toks: &[Tok]) -> Vec<Vec<Tok>> {
    let mut out = vec![Vec::new()];
    let mut depth = 0i32;
    for t in toks {
        if t.punct("(") {
            depth += 1;
        } else if t.punct(")") {
            depth -= 1;
        } else if t.punct(",") && depth == 0 {
            out.push(Vec::new());
            continue;
        }
        out.last_mut().expect("non-empty").push(t.clone());
    }
    out
}

pub(super) fn join_commas(parts: Vec<Vec<Tok>>) -> Vec<Tok> {
    let mut out = Vec::new();
    for (i, p) in parts.into_iter().enumerate() {
        if i > 0 {
            out.push(Tok::new(K::Punct, ",", ""));
        }
        out.extend(p);
    }
    out
}

pub(super) fn word(text: &str) -> Tok {
    Tok::new(K::Word, text, " ")
}
