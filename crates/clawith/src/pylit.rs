//! Clawith's legacy approvals carry their arguments as a Python `repr`
//! string (`"{'path': 'a.md'}"`), truncated to 200 characters. This reads
//! the literal subset those strings use into JSON, so the reviewer sees a
//! tree; anything it cannot read (a cut string, an object repr) stays text.

use serde_json::{Map, Number, Value};

/// Parses a Python literal: dict, list, tuple, str, int, float, bool, None.
pub fn parse(src: &str) -> Option<Value> {
    let mut p = Parser {
        s: src.as_bytes(),
        i: 0,
        depth: 0,
    };
    let v = p.value()?;
    p.ws();
    (p.i == p.s.len()).then_some(v)
}

struct Parser<'a> {
    s: &'a [u8],
    i: usize,
    depth: u32,
}

impl Parser<'_> {
    fn ws(&mut self) {
        while self.i < self.s.len() && self.s[self.i].is_ascii_whitespace() {
            self.i += 1;
        }
    }

    fn eat(&mut self, c: u8) -> bool {
        self.ws();
        if self.s.get(self.i) == Some(&c) {
            self.i += 1;
            true
        } else {
            false
        }
    }

    fn value(&mut self) -> Option<Value> {
        self.depth += 1;
        if self.depth > 64 {
            return None;
        }
        self.ws();
        let v = match *self.s.get(self.i)? {
            b'{' => self.dict(),
            b'[' => self.seq(b']'),
            b'(' => self.seq(b')'),
            b'\'' | b'"' => self.string().map(Value::String),
            _ => self.word(),
        };
        self.depth -= 1;
        v
    }

    fn dict(&mut self) -> Option<Value> {
        self.i += 1;
        let mut map = Map::new();
        if self.eat(b'}') {
            return Some(Value::Object(map));
        }
        loop {
            let key = match self.value()? {
                Value::String(s) => s,
                other => other.to_string(),
            };
            if !self.eat(b':') {
                return None;
            }
            let v = self.value()?;
            map.insert(key, v);
            if self.eat(b'}') {
                return Some(Value::Object(map));
            }
            if !self.eat(b',') {
                return None;
            }
            if self.eat(b'}') {
                return Some(Value::Object(map));
            }
        }
    }

    fn seq(&mut self, close: u8) -> Option<Value> {
        self.i += 1;
        let mut items = Vec::new();
        if self.eat(close) {
            return Some(Value::Array(items));
        }
        loop {
            items.push(self.value()?);
            if self.eat(close) {
                return Some(Value::Array(items));
            }
            if !self.eat(b',') {
                return None;
            }
            if self.eat(close) {
                return Some(Value::Array(items));
            }
        }
    }

    fn string(&mut self) -> Option<String> {
        let quote = self.s[self.i];
        self.i += 1;
        let mut out = Vec::new();
        while let Some(&c) = self.s.get(self.i) {
            self.i += 1;
            match c {
                b'\\' => {
                    let e = *self.s.get(self.i)?;
                    self.i += 1;
                    out.push(match e {
                        b'n' => b'\n',
                        b't' => b'\t',
                        b'r' => b'\r',
                        other => other,
                    });
                }
                c if c == quote => return String::from_utf8(out).ok(),
                c => out.push(c),
            }
        }
        None // cut off mid-string
    }

    fn word(&mut self) -> Option<Value> {
        let start = self.i;
        while self.i < self.s.len()
            && (self.s[self.i].is_ascii_alphanumeric() || b"+-._".contains(&self.s[self.i]))
        {
            self.i += 1;
        }
        let w = std::str::from_utf8(&self.s[start..self.i]).ok()?;
        match w {
            "True" => Some(Value::Bool(true)),
            "False" => Some(Value::Bool(false)),
            "None" => Some(Value::Null),
            _ => {
                if let Ok(n) = w.parse::<i64>() {
                    Some(Value::Number(n.into()))
                } else {
                    w.parse::<f64>()
                        .ok()
                        .and_then(Number::from_f64)
                        .map(Value::Number)
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::parse;
    use serde_json::json;

    #[test]
    fn reads_the_repr_strings_clawith_writes() {
        assert_eq!(
            parse("{'path': 'workspace/notes/todo.md', 'content': 'ship it', 'n': 3, 'ok': True, 'x': None}"),
            Some(json!({"path": "workspace/notes/todo.md", "content": "ship it", "n": 3, "ok": true, "x": null}))
        );
        assert_eq!(
            parse(r#"{'q': "it's", 'l': [1, (2, 3)]}"#),
            Some(json!({"q": "it's", "l": [1, [2, 3]]}))
        );
    }

    #[test]
    fn truncated_or_foreign_text_is_not_a_literal() {
        assert_eq!(
            parse("{'path': 'workspace/dra"),
            None,
            "cut at 200 characters mid-string"
        );
        assert_eq!(parse("<object at 0x7f>"), None);
        assert_eq!(parse("{'a': 1} trailing"), None);
    }
}
