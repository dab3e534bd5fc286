//! The access log format: Python's `%`-with-a-mapping syntax (`%(status)d`, `%(dt_ms).3f`,
//! `%(header{user-agent})s`), compiled once and rendered in Rust with Python's rules, so a line
//! comes out exactly as `format % atoms` would in Python without building anything in Python.
//!
//! Supported: flags `-`, `0`, `+`, space and `#`; a width; a precision; the length modifiers
//! `h`, `l` and `L` (ignored, as Python does); conversions `s`, `r`, `d`, `i`, `u`, `f`, `F`, `e`,
//! `E`, `x`, `X` and `o`; `%%`. A text atom with a numeric conversion is refused when the format is
//! compiled, where Python would fail on every request.

use http::header::HeaderName;

/// One value the access log can show.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Atom {
    Addr,
    Time,
    DtMs,
    Status,
    Path,
    QueryString,
    Method,
    Scheme,
    Protocol,
    ResponseSize,
    /// A request header, by its index in [`AccessFormat::request_headers`].
    RequestHeader(usize),
    /// A response header, by its index in [`AccessFormat::response_headers`].
    ResponseHeader(usize),
}

/// Names of the atoms with a fixed name, for messages and documentation.
pub const ATOM_NAMES: &str =
    "addr, time, dt_ms, status, path, query_string, method, scheme, protocol, response_size, header{name}, \
     response_header{name}";

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    Text,
    Integer,
    Real,
}

impl Atom {
    fn kind(&self) -> Kind {
        match self {
            Atom::Status | Atom::ResponseSize => Kind::Integer,
            Atom::DtMs => Kind::Real,
            _ => Kind::Text,
        }
    }
}

/// A value to render, as Python would hold it.
#[derive(Clone, Debug)]
pub enum Value<'a> {
    Text(&'a str),
    Integer(i64),
    Real(f64),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Conversion {
    Str,
    Repr,
    Decimal,
    Fixed { upper: bool },
    Exponent { upper: bool },
    Hex { upper: bool },
    Octal,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
struct Flags {
    left: bool,
    zero: bool,
    plus: bool,
    space: bool,
    alternate: bool,
}

#[derive(Clone, Debug, PartialEq, Eq)]
struct Spec {
    flags: Flags,
    width: usize,
    precision: Option<usize>,
    conversion: Conversion,
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum Piece {
    Literal(String),
    Field(Atom, Spec),
}

/// A compiled access log format.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AccessFormat {
    pieces: Vec<Piece>,
    /// Request headers named by `header{...}` atoms, lower-cased, each once.
    pub request_headers: Vec<HeaderName>,
    /// Response headers named by `response_header{...}` atoms.
    pub response_headers: Vec<HeaderName>,
}

/// Widths and precisions above this are refused (they would only make huge lines).
const MAX_WIDTH: usize = 4096;

impl AccessFormat {
    /// Compiles `format`; the error is one line that says what is wrong and where.
    pub fn compile(format: &str) -> Result<Self, String> {
        let mut compiled =
            AccessFormat { pieces: Vec::new(), request_headers: Vec::new(), response_headers: Vec::new() };
        let mut literal = String::new();
        let mut rest = format.char_indices().peekable();
        while let Some((at, ch)) = rest.next() {
            if ch != '%' {
                literal.push(ch);
                continue;
            }
            match rest.peek() {
                Some((_, '%')) => {
                    rest.next();
                    literal.push('%');
                    continue;
                }
                Some((_, '(')) => {
                    rest.next();
                }
                Some(_) => {
                    return Err(format!("every field needs an atom name, such as %(status)d (position {at})"));
                }
                None => return Err(format!("the format ends with a lone '%' (position {at})")),
            }
            let mut name = String::new();
            loop {
                match rest.next() {
                    Some((_, ')')) => break,
                    Some((_, c)) => name.push(c),
                    None => return Err(format!("the field at position {at} has no closing ')'")),
                }
            }
            let atom = compiled.atom(&name)?;
            let spec = parse_spec(&mut rest, at)?;
            check_conversion(&name, &atom, spec.conversion)?;
            if !literal.is_empty() {
                compiled.pieces.push(Piece::Literal(std::mem::take(&mut literal)));
            }
            compiled.pieces.push(Piece::Field(atom, spec));
        }
        if !literal.is_empty() {
            compiled.pieces.push(Piece::Literal(literal));
        }
        Ok(compiled)
    }

    fn atom(&mut self, name: &str) -> Result<Atom, String> {
        let fixed = match name {
            "addr" => Some(Atom::Addr),
            "time" => Some(Atom::Time),
            "dt_ms" => Some(Atom::DtMs),
            "status" => Some(Atom::Status),
            "path" => Some(Atom::Path),
            "query_string" => Some(Atom::QueryString),
            "method" => Some(Atom::Method),
            "scheme" => Some(Atom::Scheme),
            "protocol" => Some(Atom::Protocol),
            "response_size" => Some(Atom::ResponseSize),
            _ => None,
        };
        if let Some(atom) = fixed {
            return Ok(atom);
        }
        let header = |prefix: &str| name.strip_prefix(prefix).and_then(|rest| rest.strip_suffix('}'));
        let (list, response) = if let Some(header) = header("header{") {
            (header, false)
        } else if let Some(header) = header("response_header{") {
            (header, true)
        } else {
            return Err(format!("unknown atom {name:?}; the atoms are {ATOM_NAMES}"));
        };
        let header = HeaderName::from_bytes(list.trim().as_bytes())
            .map_err(|_| format!("{name:?} does not name a valid header"))?;
        let names = if response { &mut self.response_headers } else { &mut self.request_headers };
        let index = names.iter().position(|known| *known == header).unwrap_or_else(|| {
            names.push(header);
            names.len() - 1
        });
        Ok(if response { Atom::ResponseHeader(index) } else { Atom::RequestHeader(index) })
    }

    /// The atoms the fields show, in order (repeats included).
    pub fn atoms(&self) -> impl Iterator<Item = &Atom> {
        self.pieces.iter().filter_map(|piece| match piece {
            Piece::Field(atom, _) => Some(atom),
            Piece::Literal(_) => None,
        })
    }

    /// The name of `atom` in a format (header names lower-cased).
    pub fn atom_key(&self, atom: &Atom) -> String {
        match atom {
            Atom::Addr => "addr".into(),
            Atom::Time => "time".into(),
            Atom::DtMs => "dt_ms".into(),
            Atom::Status => "status".into(),
            Atom::Path => "path".into(),
            Atom::QueryString => "query_string".into(),
            Atom::Method => "method".into(),
            Atom::Scheme => "scheme".into(),
            Atom::Protocol => "protocol".into(),
            Atom::ResponseSize => "response_size".into(),
            Atom::RequestHeader(index) => format!("header{{{}}}", self.request_headers[*index]),
            Atom::ResponseHeader(index) => format!("response_header{{{}}}", self.response_headers[*index]),
        }
    }

    /// Whether any field shows `atom`.
    pub fn uses(&self, atom: &Atom) -> bool {
        self.atoms().any(|used| used == atom)
    }

    /// Renders one line; `value` gives each atom's value.
    pub fn render<'a>(&self, mut value: impl FnMut(&Atom) -> Value<'a>) -> String {
        let mut line = String::with_capacity(128);
        for piece in &self.pieces {
            match piece {
                Piece::Literal(text) => line.push_str(text),
                Piece::Field(atom, spec) => render_field(&mut line, spec, value(atom)),
            }
        }
        line
    }
}

fn parse_number(rest: &mut std::iter::Peekable<std::str::CharIndices<'_>>, at: usize) -> Result<usize, String> {
    let mut number = 0usize;
    while let Some(&(_, digit @ '0'..='9')) = rest.peek() {
        rest.next();
        number = number * 10 + (digit as usize - '0' as usize);
        if number > MAX_WIDTH {
            return Err(format!("the field at position {at} asks for more than {MAX_WIDTH} characters"));
        }
    }
    Ok(number)
}

fn parse_spec(rest: &mut std::iter::Peekable<std::str::CharIndices<'_>>, at: usize) -> Result<Spec, String> {
    let mut flags = Flags::default();
    while let Some(&(_, flag)) = rest.peek() {
        match flag {
            '-' => flags.left = true,
            '0' => flags.zero = true,
            '+' => flags.plus = true,
            ' ' => flags.space = true,
            '#' => flags.alternate = true,
            _ => break,
        }
        rest.next();
    }
    if matches!(rest.peek(), Some((_, '*'))) {
        return Err(format!("'*' widths are not supported (position {at})"));
    }
    let width = parse_number(rest, at)?;
    let precision = if matches!(rest.peek(), Some((_, '.'))) {
        rest.next();
        if matches!(rest.peek(), Some((_, '*'))) {
            return Err(format!("'*' precisions are not supported (position {at})"));
        }
        Some(parse_number(rest, at)?)
    } else {
        None
    };
    while matches!(rest.peek(), Some((_, 'h' | 'l' | 'L'))) {
        rest.next();
    }
    let conversion = match rest.next() {
        Some((_, 's')) => Conversion::Str,
        Some((_, 'r')) => Conversion::Repr,
        Some((_, 'd' | 'i' | 'u')) => Conversion::Decimal,
        Some((_, 'f')) => Conversion::Fixed { upper: false },
        Some((_, 'F')) => Conversion::Fixed { upper: true },
        Some((_, 'e')) => Conversion::Exponent { upper: false },
        Some((_, 'E')) => Conversion::Exponent { upper: true },
        Some((_, 'x')) => Conversion::Hex { upper: false },
        Some((_, 'X')) => Conversion::Hex { upper: true },
        Some((_, 'o')) => Conversion::Octal,
        Some((position, other)) => {
            return Err(format!("unsupported format character {other:?} at position {position}"));
        }
        None => return Err(format!("the field at position {at} has no conversion character, such as s or d")),
    };
    Ok(Spec { flags, width, precision, conversion })
}

fn check_conversion(name: &str, atom: &Atom, conversion: Conversion) -> Result<(), String> {
    let numeric = !matches!(conversion, Conversion::Str | Conversion::Repr);
    let integral = matches!(conversion, Conversion::Hex { .. } | Conversion::Octal);
    match atom.kind() {
        Kind::Text if numeric => Err(format!("%({name}) is text: show it with %({name})s")),
        Kind::Real if integral => Err(format!("%({name}) is a real number: show it with %({name})f or %({name})d")),
        _ => Ok(()),
    }
}

fn pad(line: &mut String, spec: &Spec, body: &str, numeric_prefix_len: Option<usize>) {
    let length = body.chars().count();
    if length >= spec.width {
        line.push_str(body);
        return;
    }
    let fill = spec.width - length;
    if spec.flags.left {
        line.push_str(body);
        line.extend(std::iter::repeat_n(' ', fill));
    } else if let (true, Some(prefix)) = (spec.flags.zero, numeric_prefix_len) {
        line.push_str(&body[..prefix]);
        line.extend(std::iter::repeat_n('0', fill));
        line.push_str(&body[prefix..]);
    } else {
        line.extend(std::iter::repeat_n(' ', fill));
        line.push_str(body);
    }
}

fn sign(spec: &Spec, negative: bool) -> &'static str {
    if negative {
        "-"
    } else if spec.flags.plus {
        "+"
    } else if spec.flags.space {
        " "
    } else {
        ""
    }
}

fn render_field(line: &mut String, spec: &Spec, value: Value<'_>) {
    match spec.conversion {
        Conversion::Str | Conversion::Repr => {
            let text = match (&value, spec.conversion) {
                (Value::Text(text), Conversion::Repr) => python_repr(text),
                (Value::Text(text), _) => (*text).to_owned(),
                (Value::Integer(number), _) => number.to_string(),
                (Value::Real(number), _) => python_float_repr(*number),
            };
            let shown = match spec.precision {
                Some(precision) => text.chars().take(precision).collect(),
                None => text,
            };
            pad(line, spec, &shown, None);
        }
        Conversion::Decimal | Conversion::Hex { .. } | Conversion::Octal => {
            let number: i128 = match value {
                Value::Integer(number) => number.into(),
                Value::Real(number) => number.trunc() as i128,
                Value::Text(_) => 0,
            };
            let magnitude = number.unsigned_abs();
            let (mut digits, prefix) = match spec.conversion {
                Conversion::Hex { upper: false } => (format!("{magnitude:x}"), "0x"),
                Conversion::Hex { upper: true } => (format!("{magnitude:X}"), "0X"),
                Conversion::Octal => (format!("{magnitude:o}"), "0o"),
                _ => (magnitude.to_string(), ""),
            };
            if let Some(precision) = spec.precision {
                if digits.len() < precision {
                    digits = "0".repeat(precision - digits.len()) + &digits;
                }
            }
            let prefix = if spec.flags.alternate { prefix } else { "" };
            let head = format!("{}{prefix}", sign(spec, number < 0));
            pad(line, spec, &format!("{head}{digits}"), Some(head.len()));
        }
        Conversion::Fixed { upper } | Conversion::Exponent { upper } => {
            let number = match value {
                Value::Integer(number) => number as f64,
                Value::Real(number) => number,
                Value::Text(_) => 0.0,
            };
            let precision = spec.precision.unwrap_or(6);
            let magnitude = number.abs();
            let mut digits = if !number.is_finite() {
                if number.is_nan() { "nan" } else { "inf" }.to_owned()
            } else if matches!(spec.conversion, Conversion::Exponent { .. }) {
                python_exponent(&format!("{magnitude:.precision$e}"))
            } else {
                format!("{magnitude:.precision$}")
            };
            if spec.flags.alternate && precision == 0 && number.is_finite() {
                match digits.find('e') {
                    Some(e) => digits.insert(e, '.'),
                    None => digits.push('.'),
                }
            }
            if upper {
                digits = digits.to_uppercase();
            }
            let head = sign(spec, number.is_sign_negative() && !number.is_nan());
            let numeric_prefix = number.is_finite().then_some(head.len());
            pad(line, spec, &format!("{head}{digits}"), numeric_prefix);
        }
    }
}

/// Rust writes `1.5e4`; Python writes `1.5e+04`.
fn python_exponent(rust: &str) -> String {
    match rust.split_once('e') {
        Some((mantissa, exponent)) => {
            let exponent: i32 = exponent.parse().unwrap_or(0);
            let sign = if exponent < 0 { '-' } else { '+' };
            format!("{mantissa}e{sign}{:02}", exponent.unsigned_abs())
        }
        None => rust.to_owned(),
    }
}

/// `repr(float)`: the shortest text that reads back as the same number, in Python's layout.
fn python_float_repr(number: f64) -> String {
    if number.is_nan() {
        return "nan".to_owned();
    }
    if number.is_infinite() {
        return if number > 0.0 { "inf" } else { "-inf" }.to_owned();
    }
    let scientific = format!("{number:e}");
    let exponent: i32 = scientific.split_once('e').and_then(|(_, e)| e.parse().ok()).unwrap_or(0);
    if (-4..16).contains(&exponent) {
        let plain = format!("{number}");
        if plain.contains('.') {
            plain
        } else {
            plain + ".0"
        }
    } else {
        python_exponent(&scientific)
    }
}

/// `repr(str)` for the printable text atoms hold.
fn python_repr(text: &str) -> String {
    let quote = if text.contains('\'') && !text.contains('"') { '"' } else { '\'' };
    let mut repr = String::with_capacity(text.len() + 2);
    repr.push(quote);
    for ch in text.chars() {
        match ch {
            '\\' => repr.push_str("\\\\"),
            c if c == quote => {
                repr.push('\\');
                repr.push(c);
            }
            c => repr.push(c),
        }
    }
    repr.push(quote);
    repr
}

#[cfg(test)]
mod tests {
    use super::*;

    fn one(format: &str, value: Value<'_>) -> String {
        let compiled = AccessFormat::compile(format).expect(format);
        compiled.render(|_| value.clone())
    }

    #[test]
    fn numbers_render_as_python_renders_them() {
        // Expected values are Python's `format % value`.
        let cases: &[(&str, Value<'_>, &str)] = &[
            ("%(status).3d", Value::Integer(5), "005"),
            ("%(dt_ms)05.1f", Value::Real(-2.25), "-02.2"),
            ("%(status)+d", Value::Integer(3), "+3"),
            ("%(status) d", Value::Integer(3), " 3"),
            ("%(status)#x", Value::Integer(255), "0xff"),
            ("%(status)#o", Value::Integer(8), "0o10"),
            ("%(dt_ms)#.0f", Value::Real(1.0), "1."),
            ("%(status)-6d|", Value::Integer(12), "12    |"),
            ("%(dt_ms)s", Value::Real(1e16), "1e+16"),
            ("%(dt_ms)s", Value::Real(1e-5), "1e-05"),
            ("%(dt_ms)s", Value::Real(123.0), "123.0"),
            ("%(dt_ms)e", Value::Real(12345.678), "1.234568e+04"),
            ("%(dt_ms).0e", Value::Real(5.5), "6e+00"),
            ("%(dt_ms)E", Value::Real(0.0), "0.000000E+00"),
            ("%(dt_ms)d", Value::Real(2.9), "2"),
            ("%(dt_ms)-+8.2f", Value::Real(1.23456), "+1.23   "),
            ("%(dt_ms)08.3f", Value::Real(-1.5), "-001.500"),
            ("%(status)+.3d", Value::Integer(-5), "-005"),
            ("%(status)ld", Value::Integer(5), "5"),
            ("%(dt_ms)s", Value::Real(0.1 + 0.2), "0.30000000000000004"),
            ("%(dt_ms).1f", Value::Real(0.25), "0.2"),
            ("%(dt_ms).3f", Value::Real(12.3456), "12.346"),
        ];
        for (format, value, expected) in cases {
            assert_eq!(one(format, value.clone()), *expected, "{format}");
        }
    }

    #[test]
    fn text_renders_as_python_renders_it() {
        assert_eq!(one("%(addr)06s", Value::Text("ab")), "    ab");
        assert_eq!(one("%(addr).2s", Value::Text("abc")), "ab");
        assert_eq!(one("%(addr)5.3s", Value::Text("abcdef")), "  abc");
        assert_eq!(one("%(addr)r", Value::Text("a'b")), "\"a'b\"");
        assert_eq!(one("%(addr)r", Value::Text("a\"b")), "'a\"b'");
        assert_eq!(one("%(addr)r", Value::Text("a\\b")), "'a\\\\b'");
        assert_eq!(one("100%% %(addr)s", Value::Text("x")), "100% x");
    }

    #[test]
    fn header_atoms_are_collected_once_each() {
        let format = AccessFormat::compile("%(header{User-Agent})s %(header{user-agent})s %(response_header{ETag})s")
            .expect("compiles");
        assert_eq!(format.request_headers, vec![HeaderName::from_static("user-agent")]);
        assert_eq!(format.response_headers, vec![HeaderName::from_static("etag")]);
        assert!(format.uses(&Atom::RequestHeader(0)));
        assert!(!format.uses(&Atom::Time));
    }

    #[test]
    fn mistakes_are_refused_with_one_line() {
        for (format, expected) in [
            ("%(nope)s", "unknown atom"),
            ("%(addr)d", "is text"),
            ("%(dt_ms)x", "real number"),
            ("%s", "needs an atom name"),
            ("%(addr", "no closing"),
            ("%(addr)", "no conversion"),
            ("%(addr)z", "unsupported format character 'z'"),
            ("%(addr)*s", "'*'"),
            ("abc %", "lone '%'"),
            ("%(header{bad name})s", "valid header"),
            ("%(addr)99999s", "more than 4096"),
        ] {
            let err = AccessFormat::compile(format).expect_err(format);
            assert!(err.contains(expected), "{format}: {err}");
            assert!(!err.contains('\n'));
        }
    }
}
