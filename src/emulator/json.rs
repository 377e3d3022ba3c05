//! The records as Python's `json.dumps` writes them by default, byte for byte.

/// Writes a JSON object the way Python's `json.dumps` does by default.
pub(super) struct PyJson {
    buf: Vec<u8>,
}

impl PyJson {
    pub(super) fn new(capacity: usize) -> Self {
        PyJson {
            buf: Vec::with_capacity(capacity),
        }
    }
    fn key(&mut self, key: &str) {
        self.buf
            .extend_from_slice(if self.buf.is_empty() { b"{" } else { b", " });
        py_str(&mut self.buf, key);
        self.buf.extend_from_slice(b": ");
    }
    pub(super) fn str(&mut self, key: &str, value: &str) {
        self.key(key);
        py_str(&mut self.buf, value);
    }
    pub(super) fn int(&mut self, key: &str, value: i64) {
        self.key(key);
        self.buf.extend_from_slice(value.to_string().as_bytes());
    }
    pub(super) fn float(&mut self, key: &str, value: f64) {
        self.key(key);
        self.buf.extend_from_slice(py_float(value).as_bytes());
    }
    pub(super) fn finish(mut self) -> Vec<u8> {
        self.buf.push(b'}');
        self.buf
    }
}

/// A JSON string as `json.dumps(ensure_ascii=True)` writes it.
pub(super) fn py_str(out: &mut Vec<u8>, s: &str) {
    out.push(b'"');
    for c in s.chars() {
        match c {
            '"' => out.extend_from_slice(b"\\\""),
            '\\' => out.extend_from_slice(b"\\\\"),
            '\n' => out.extend_from_slice(b"\\n"),
            '\r' => out.extend_from_slice(b"\\r"),
            '\t' => out.extend_from_slice(b"\\t"),
            '\u{8}' => out.extend_from_slice(b"\\b"),
            '\u{c}' => out.extend_from_slice(b"\\f"),
            ' '..='~' => out.push(c as u8),
            _ => {
                let mut units = [0u16; 2];
                for unit in c.encode_utf16(&mut units) {
                    out.extend_from_slice(format!("\\u{unit:04x}").as_bytes());
                }
            }
        }
    }
    out.push(b'"');
}

/// A float as Python's `repr` writes it: shortest round-trip digits, `.0` on integral
/// values, exponent form (`1e-05`) below 1e-4 and from 1e16 on.
pub(super) fn py_float(v: f64) -> String {
    if !v.is_finite() {
        // json.dumps writes these (not valid JSON); the emulator never produces them.
        return if v.is_nan() {
            "NaN".into()
        } else if v > 0.0 {
            "Infinity".into()
        } else {
            "-Infinity".into()
        };
    }
    let a = v.abs();
    if a != 0.0 && !(1e-4..1e16).contains(&a) {
        let s = format!("{v:e}");
        let (mantissa, exp) = s.split_once('e').expect("exponent form");
        let exp: i32 = exp.parse().expect("exponent");
        let sign = if exp < 0 { '-' } else { '+' };
        return format!("{mantissa}e{sign}{:02}", exp.abs());
    }
    let s = format!("{v}");
    if s.contains('.') { s } else { s + ".0" }
}
