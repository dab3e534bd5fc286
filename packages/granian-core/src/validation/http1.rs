//! The HTTP/1.1 message rules hyper's parser is lenient about (RFC 9112), as a state machine over
//! the bytes a client sends: request heads, Content-Length and chunked bodies, chunk lines and
//! trailer sections. It frames messages exactly as hyper does for every message it accepts (a
//! message whose framing could be read two ways is refused), so the two never disagree on where
//! the next request starts.

use http::StatusCode;

/// What the checker decided about the bytes at the start of its input.
#[derive(Debug, PartialEq, Eq)]
pub enum Step {
    /// The first `n` (> 0) bytes are fine; call again with the rest.
    Release(usize),
    /// The input is an incomplete unit (a head, a chunk line, a trailer section): call again with
    /// these bytes and more.
    NeedMore,
    /// The input starts a message that must be refused before hyper sees it, with this status.
    RefuseMessage(StatusCode),
    /// The input breaks the framing of a body hyper is already reading: the connection must end.
    BreakBody,
    /// The rest of the connection is not HTTP/1 messages (HTTP/2's preface, an accepted upgrade):
    /// stop checking.
    PassThrough,
    /// The message before asked to switch protocols (Upgrade, CONNECT): hold what follows until the
    /// connection knows whether it did ([`Http1Checker::resolve_upgrade`]).
    AwaitUpgrade,
}

/// Where the client is in its stream of messages.
#[derive(Debug)]
enum Phase {
    /// Before a request head; `first` on a connection's first message.
    Head {
        first: bool,
    },
    /// `remaining` bytes of a Content-Length body; `upgrade` when the connection switches after it.
    Body {
        remaining: u64,
        upgrade: bool,
    },
    ChunkLine,
    ChunkData {
        remaining: u64,
    },
    /// The CRLF after a chunk's data.
    ChunkEnd,
    Trailers,
    AwaitUpgrade,
    PassThrough,
}

/// Longest chunk-size line (size, extensions, CRLF) accepted.
const MAX_CHUNK_LINE: usize = 4096;

/// Checks one connection's requests.
#[derive(Debug)]
pub struct Http1Checker {
    phase: Phase,
    /// Whether the current chunked message upgrades the connection once it ends.
    upgrade_after_body: bool,
    /// Whether the current message is the connection's last (`Connection: close`): what follows it
    /// is never read as a request, so it is not checked (nor refused) either.
    last_message: bool,
    /// How far the incomplete head or trailer section at the start of the input has been searched
    /// for its end (the start of its last, unfinished line): each call searches only what arrived
    /// since, so a head trickling in byte by byte costs linear, not quadratic, time.
    scanned: usize,
}

impl Default for Http1Checker {
    fn default() -> Self {
        Self { phase: Phase::Head { first: true }, upgrade_after_body: false, last_message: false, scanned: 0 }
    }
}

/// How a request's body is framed, read from its head.
#[derive(Debug, PartialEq, Eq)]
enum Framing {
    None,
    Length(u64),
    Chunked,
}

/// What a valid head says about what follows it.
#[derive(Debug, PartialEq, Eq)]
struct HeadFacts {
    framing: Framing,
    /// CONNECT, or an Upgrade header: the bytes after this message may not be HTTP/1.
    upgrade: bool,
    /// `PRI * HTTP/2.0`: the first line of HTTP/2's connection preface.
    http2_preface: bool,
    /// `Connection: close`: hyper answers this message, then closes without reading another.
    closes: bool,
}

impl Http1Checker {
    pub fn step(&mut self, input: &[u8]) -> Step {
        if input.is_empty() {
            return Step::NeedMore;
        }
        match self.phase {
            Phase::PassThrough => Step::PassThrough,
            Phase::AwaitUpgrade => Step::AwaitUpgrade,
            Phase::Head { first } => {
                let end = match self.block_start(input) {
                    // Empty lines before a request line are skipped by hyper too (RFC 9112 §2.2).
                    Block::EmptyLine => return Step::Release(2),
                    Block::Incomplete => return Step::NeedMore,
                    Block::BareLineFeed => return Step::RefuseMessage(StatusCode::BAD_REQUEST),
                    Block::Ends(end) => end,
                };
                match check_head(&input[..end]) {
                    Err(status) => Step::RefuseMessage(status),
                    Ok(facts) if facts.http2_preface && first => {
                        self.phase = Phase::PassThrough;
                        Step::PassThrough
                    }
                    Ok(facts) if facts.http2_preface => Step::RefuseMessage(StatusCode::BAD_REQUEST),
                    Ok(facts) => {
                        self.last_message = facts.closes;
                        self.phase = match facts.framing {
                            Framing::None | Framing::Length(0) => self.message_done(facts.upgrade),
                            Framing::Length(length) => Phase::Body { remaining: length, upgrade: facts.upgrade },
                            Framing::Chunked => {
                                self.upgrade_after_body = facts.upgrade;
                                Phase::ChunkLine
                            }
                        };
                        Step::Release(end)
                    }
                }
            }
            Phase::Body { remaining, upgrade } => {
                let take = remaining.min(input.len() as u64);
                self.phase = if take < remaining {
                    Phase::Body { remaining: remaining - take, upgrade }
                } else {
                    self.message_done(upgrade)
                };
                Step::Release(take as usize)
            }
            Phase::ChunkLine => match chunk_line(input) {
                ChunkLine::Incomplete if input.len() >= MAX_CHUNK_LINE => Step::BreakBody,
                ChunkLine::Incomplete => Step::NeedMore,
                ChunkLine::Invalid => Step::BreakBody,
                ChunkLine::Size { size: 0, length } => {
                    self.phase = Phase::Trailers;
                    Step::Release(length)
                }
                ChunkLine::Size { size, length } => {
                    self.phase = Phase::ChunkData { remaining: size };
                    Step::Release(length)
                }
            },
            Phase::ChunkData { remaining } => {
                let take = remaining.min(input.len() as u64);
                self.phase =
                    if take < remaining { Phase::ChunkData { remaining: remaining - take } } else { Phase::ChunkEnd };
                Step::Release(take as usize)
            }
            Phase::ChunkEnd => match input {
                [b'\r'] => Step::NeedMore,
                [b'\r', b'\n', ..] => {
                    self.phase = Phase::ChunkLine;
                    Step::Release(2)
                }
                _ => Step::BreakBody,
            },
            Phase::Trailers => {
                let end = match self.block_start(input) {
                    Block::EmptyLine => {
                        self.phase = self.message_done(self.upgrade_after_body);
                        return Step::Release(2);
                    }
                    Block::Incomplete => return Step::NeedMore,
                    Block::BareLineFeed => return Step::BreakBody,
                    Block::Ends(end) => end,
                };
                if check_trailers(&input[..end]) {
                    self.phase = self.message_done(self.upgrade_after_body);
                    Step::Release(end)
                } else {
                    Step::BreakBody
                }
            }
        }
    }

    /// What starts `input` in the Head and Trailers phases: an empty line, or a header block.
    fn block_start(&mut self, input: &[u8]) -> Block {
        if input.starts_with(b"\r\n") {
            return Block::EmptyLine;
        }
        if input == b"\r" {
            return Block::Incomplete;
        }
        match self.block_end(input) {
            Ok(Some(end)) => Block::Ends(end),
            Ok(None) => Block::Incomplete,
            Err(BareLineFeed) => Block::BareLineFeed,
        }
    }

    /// The length of the head or trailer section at the start of `input` (through its blank line)
    /// when it is complete; a bare LF anywhere before its end is an error.
    fn block_end(&mut self, input: &[u8]) -> Result<Option<usize>, BareLineFeed> {
        let from = self.scanned.min(input.len());
        let mut line_start = from;
        for newline in memchr::memchr_iter(b'\n', &input[from..]).map(|at| at + from) {
            if newline == 0 || input[newline - 1] != b'\r' {
                return Err(BareLineFeed);
            }
            // A line that is just CRLF ends the block.
            if newline == line_start + 1 {
                self.scanned = 0;
                return Ok(Some(newline + 1));
            }
            line_start = newline + 1;
        }
        self.scanned = line_start;
        Ok(None)
    }

    /// Whether the bytes being checked belong to a request head.
    pub fn in_head(&self) -> bool {
        matches!(self.phase, Phase::Head { .. })
    }

    /// Whether the checker waits to learn if the connection switched protocols.
    pub fn awaiting_upgrade(&self) -> bool {
        matches!(self.phase, Phase::AwaitUpgrade)
    }

    /// What became of the requested switch: the rest is another protocol, or more HTTP/1 requests
    /// (which are checked like any other: an Upgrade header does not turn checking off).
    pub fn resolve_upgrade(&mut self, switched: bool) {
        if self.awaiting_upgrade() {
            self.phase = if switched { Phase::PassThrough } else { Phase::Head { first: false } };
        }
    }

    fn message_done(&mut self, upgrade: bool) -> Phase {
        self.upgrade_after_body = false;
        if upgrade {
            Phase::AwaitUpgrade
        } else if self.last_message {
            Phase::PassThrough
        } else {
            Phase::Head { first: false }
        }
    }
}

/// Every byte of a head or trailer section is allowed somewhere in it (no control character but
/// tab, CR and LF; no DEL), and every CR is followed by LF. For a block [`Http1Checker::block_end`]
/// delimited, which found every LF preceded by a CR: with as many CRs as LFs, no CR is bare either.
fn plain_lines(block: &[u8]) -> bool {
    // Narrow accumulators and no early exit: these compile to SIMD.
    let forbidden = block.iter().fold(0u8, |acc, &b| {
        acc | (u8::from(b < 0x20) & u8::from(b != b'\t') & u8::from(b != b'\r') & u8::from(b != b'\n'))
            | u8::from(b == 0x7f)
    });
    let crs_minus_lfs = block.iter().fold(0i32, |d, &b| d + i32::from(b == b'\r') - i32::from(b == b'\n'));
    debug_assert!(memchr::memchr_iter(b'\n', block).all(|newline| newline > 0 && block[newline - 1] == b'\r'));
    forbidden == 0 && crs_minus_lfs == 0
}

/// A line feed without a carriage return before it.
struct BareLineFeed;

/// The start of the input where a request head or a trailer section may begin.
enum Block {
    /// CRLF: a blank line (skipped before a head; the end of an empty trailer section).
    EmptyLine,
    /// Not enough bytes to tell.
    Incomplete,
    /// A bare LF before the block's end.
    BareLineFeed,
    /// A complete block of this many bytes, through its blank line.
    Ends(usize),
}

/// tchar (RFC 9110 §5.6.2): the characters of methods, header names and transfer codings.
const TOKEN: [bool; 256] = {
    let mut table = [false; 256];
    let mut byte = 0;
    while byte < 256 {
        let c = byte as u8;
        table[byte] = c.is_ascii_alphanumeric()
            || matches!(
                c,
                b'!' | b'#' | b'$' | b'%' | b'&' | b'\'' | b'*' | b'+' | b'-' | b'.' | b'^' | b'_' | b'`' | b'|' | b'~'
            );
        byte += 1;
    }
    table
};

// The checks below fold over every byte without stopping early, which lets the compiler use SIMD:
// a head is valid far more often than not, so there is nothing to gain from stopping.

fn is_token(bytes: &[u8]) -> bool {
    !bytes.is_empty() && bytes.iter().fold(true, |ok, &b| ok & TOKEN[b as usize])
}

/// Field value bytes: visible ASCII, space, tab and obs-text; no other control character.
fn is_field_value(bytes: &[u8]) -> bool {
    bytes.iter().fold(true, |ok, &b| ok & ((b >= 0x20 && b != 0x7f) | (b == b'\t')))
}

/// Request-target bytes: visible ASCII only (RFC 9112 §3.2; no space, control or non-ASCII byte).
fn is_target(bytes: &[u8]) -> bool {
    !bytes.is_empty() && bytes.iter().fold(true, |ok, &b| ok & (b > 0x20 && b < 0x7f))
}

fn trim_ows(mut value: &[u8]) -> &[u8] {
    while let [b' ' | b'\t', rest @ ..] = value {
        value = rest;
    }
    while let [rest @ .., b' ' | b'\t'] = value {
        value = rest;
    }
    value
}

/// The lines of a complete head or trailer section (every line CRLF-terminated, see `head_end`),
/// without their CRLF; the blank line that ends the block is left out.
fn lines(block: &[u8]) -> impl Iterator<Item = &[u8]> {
    let mut start = 0;
    memchr::memchr_iter(b'\n', block).filter_map(move |newline| {
        let line = &block[start..newline - 1];
        start = newline + 1;
        (!line.is_empty()).then_some(line)
    })
}

/// A header field line of a block `plain_lines` accepted: `name ":" OWS value OWS`; None when the
/// name is not a token or is followed by anything but the colon (whitespace before the colon,
/// obs-fold).
fn field(line: &[u8]) -> Option<(&[u8], &[u8])> {
    let colon = line.iter().position(|&b| !TOKEN[b as usize])?;
    (colon > 0 && line[colon] == b':').then(|| (&line[..colon], trim_ows(&line[colon + 1..])))
}

fn check_head(head: &[u8]) -> Result<HeadFacts, StatusCode> {
    let bad = StatusCode::BAD_REQUEST;
    if !plain_lines(head) {
        return Err(bad);
    }
    let mut lines = lines(head);
    let request_line = lines.next().ok_or(bad)?;
    // `method SP target SP version`: a version with a space in it (a fourth part) matches none
    // of the versions below.
    let (method, rest) = request_line.split_at(request_line.iter().position(|&b| b == b' ').ok_or(bad)?);
    let rest = &rest[1..];
    let (target, version) = rest.split_at(memchr::memchr(b' ', rest).ok_or(bad)?);
    let version = &version[1..];
    if !is_token(method) || !is_target(target) {
        return Err(bad);
    }
    let http10 = match version {
        b"HTTP/1.1" => false,
        b"HTTP/1.0" => true,
        b"HTTP/2.0" if method == b"PRI" && target == b"*" => {
            return Ok(HeadFacts { framing: Framing::None, upgrade: true, http2_preface: true, closes: false })
        }
        [b'H', b'T', b'T', b'P', b'/', major, b'.', minor] if major.is_ascii_digit() && minor.is_ascii_digit() => {
            return Err(StatusCode::HTTP_VERSION_NOT_SUPPORTED)
        }
        _ => return Err(bad),
    };
    let connect = method == b"CONNECT";
    let target_ok = match target {
        [b'/', ..] => !connect,
        b"*" => method == b"OPTIONS",
        _ if connect => is_authority(target),
        _ => is_absolute_form(target),
    };
    if !target_ok {
        return Err(bad);
    }

    let (mut hosts, mut lengths, mut encodings) = (0, Vec::new(), Vec::new());
    let mut upgrade = connect;
    let mut closes = false;
    for line in lines {
        let (name, value) = field(line).ok_or(bad)?;
        if name.eq_ignore_ascii_case(b"host") {
            hosts += 1;
        } else if name.eq_ignore_ascii_case(b"content-length") {
            lengths.push(value);
        } else if name.eq_ignore_ascii_case(b"transfer-encoding") {
            encodings.push(value);
        } else if name.eq_ignore_ascii_case(b"upgrade") {
            upgrade = true;
        } else if name.eq_ignore_ascii_case(b"connection") {
            closes |= has_close_token(value);
        }
    }
    // RFC 9112 §3.2: exactly one Host in HTTP/1.1, at most one otherwise.
    if hosts > 1 || (hosts == 0 && !http10) {
        return Err(bad);
    }
    let framing = match (lengths.as_slice(), encodings.as_slice()) {
        ([], []) => Framing::None,
        // One Content-Length of digits only: no list, no sign, no repeat (even of the same value).
        ([length], []) if !length.is_empty() && length.len() <= 19 && length.iter().all(u8::is_ascii_digit) => {
            Framing::Length(std::str::from_utf8(length).ok().and_then(|l| l.parse().ok()).ok_or(bad)?)
        }
        // One Transfer-Encoding, exactly `chunked` (the only coding hyper decodes), never in HTTP/1.0.
        ([], [coding]) if !http10 && coding.eq_ignore_ascii_case(b"chunked") => Framing::Chunked,
        _ => return Err(bad),
    };
    Ok(HeadFacts { framing, upgrade, http2_preface: false, closes })
}

/// A `close` token in a Connection field value, exactly as hyper finds it: only in a value of
/// visible ASCII (hyper reads others as no token at all), split at commas, trimmed. A message
/// counted as the last here must be the last for hyper too, or bytes hyper reads as a request would
/// pass unchecked.
fn has_close_token(value: &[u8]) -> bool {
    value.iter().all(|&b| b == b'\t' || (b' '..=b'~').contains(&b))
        && value.split(|&b| b == b',').any(|token| trim_ows(token).eq_ignore_ascii_case(b"close"))
}

/// `host:port` (CONNECT's authority-form).
fn is_authority(target: &[u8]) -> bool {
    match target.iter().rposition(|&b| b == b':') {
        Some(colon) => {
            let (host, port) = (&target[..colon], &target[colon + 1..]);
            !host.is_empty() && !port.is_empty() && port.iter().all(u8::is_ascii_digit) && !target.contains(&b'/')
        }
        None => false,
    }
}

/// `scheme "://" ...` (absolute-form).
fn is_absolute_form(target: &[u8]) -> bool {
    let Some(colon) = memchr::memchr(b':', target) else {
        return false;
    };
    let scheme = &target[..colon];
    scheme.first().is_some_and(u8::is_ascii_alphabetic)
        && scheme.iter().all(|&b| b.is_ascii_alphanumeric() || b"+-.".contains(&b))
        && target[colon + 1..].starts_with(b"//")
}

/// Fields a sender must not put in trailers (RFC 9110 §6.5.1): framing, routing, request
/// modifiers, authentication and content metadata; a recipient merging them would be fooled.
const FORBIDDEN_TRAILERS: [&[u8]; 14] = [
    b"content-length",
    b"transfer-encoding",
    b"host",
    b"trailer",
    b"te",
    b"expect",
    b"range",
    b"authorization",
    b"cache-control",
    b"max-forwards",
    b"pragma",
    b"content-type",
    b"content-encoding",
    b"content-range",
];

fn check_trailers(section: &[u8]) -> bool {
    plain_lines(section)
        && lines(section).all(|line| {
            field(line).is_some_and(|(name, _)| !FORBIDDEN_TRAILERS.iter().any(|f| name.eq_ignore_ascii_case(f)))
        })
}

enum ChunkLine {
    Incomplete,
    Invalid,
    Size { size: u64, length: usize },
}

/// `chunk-size [ chunk-ext ] CRLF` at the start of `input`: 1 to 16 hex digits; extensions only
/// after `;` (whitespace directly before the `;` is allowed, not before the CRLF); no control
/// character, bare CR or bare LF inside.
fn chunk_line(input: &[u8]) -> ChunkLine {
    let digits = input.iter().take_while(|b| b.is_ascii_hexdigit()).count();
    if digits == 0 {
        return if input.is_empty() { ChunkLine::Incomplete } else { ChunkLine::Invalid };
    }
    if digits > 16 {
        return ChunkLine::Invalid;
    }
    let Some(newline) = memchr::memchr(b'\n', input) else {
        // Not finished; a CR may only be the last byte so far (the start of the CRLF).
        let rest = &input[digits..];
        let early_cr = rest[..rest.len().saturating_sub(1)].contains(&b'\r');
        return if early_cr { ChunkLine::Invalid } else { ChunkLine::Incomplete };
    };
    if newline < digits + 1 || input[newline - 1] != b'\r' {
        return ChunkLine::Invalid;
    }
    let rest = &input[digits..newline - 1];
    let extensions_ok = match rest {
        [] => true,
        _ => {
            let after_space = trim_ows_start(rest);
            after_space.first() == Some(&b';') && is_field_value(after_space)
        }
    };
    if !extensions_ok {
        return ChunkLine::Invalid;
    }
    match std::str::from_utf8(&input[..digits]).ok().and_then(|hex| u64::from_str_radix(hex, 16).ok()) {
        Some(size) => ChunkLine::Size { size, length: newline + 1 },
        None => ChunkLine::Invalid,
    }
}

fn trim_ows_start(mut value: &[u8]) -> &[u8] {
    while let [b' ' | b'\t', rest @ ..] = value {
        value = rest;
    }
    value
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Runs a checker over `input` delivered whole; returns the steps taken.
    fn run(input: &[u8]) -> Vec<Step> {
        let mut checker = Http1Checker::default();
        let mut steps = Vec::new();
        let mut at = 0;
        loop {
            let step = checker.step(&input[at..]);
            let done = !matches!(step, Step::Release(_));
            if let Step::Release(n) = step {
                at += n;
            }
            steps.push(step);
            if done || at == input.len() {
                return steps;
            }
        }
    }

    fn verdict(input: &[u8]) -> Step {
        run(input).pop().unwrap()
    }

    #[test]
    fn valid_requests_are_released_whole() {
        let get = b"GET /a?b=c HTTP/1.1\r\nHost: x\r\nAccept: */*\r\n\r\n";
        assert_eq!(run(get), vec![Step::Release(get.len())]);
        let post = b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\nabcGET / HTTP/1.0\r\n\r\n";
        assert_eq!(run(post), vec![Step::Release(47), Step::Release(3), Step::Release(18)]);
        let chunked =
            b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n3;a=b\r\nabc\r\n0\r\nX-Sum: 1\r\n\r\n";
        assert!(run(chunked).iter().all(|s| matches!(s, Step::Release(_))), "{:?}", run(chunked));
        assert!(matches!(verdict(b"OPTIONS * HTTP/1.1\r\nHost: x\r\n\r\n"), Step::Release(_)));
        assert!(matches!(verdict(b"GET http://x/y HTTP/1.1\r\nHost: x\r\n\r\n"), Step::Release(_)));
        assert!(matches!(verdict(b"\r\nGET / HTTP/1.1\r\nHost: x\r\n\r\n"), Step::Release(_)));
        assert_eq!(verdict(b"GET / HTTP/1.1\r\nHost: x\r\n"), Step::NeedMore);
    }

    #[test]
    fn the_corpus_of_lenient_inputs_is_refused() {
        let bad = Step::RefuseMessage(StatusCode::BAD_REQUEST);
        for request in [
            &b"GET /a\x00b HTTP/1.1\r\nHost: x\r\n\r\n"[..],
            b"GET /caf\xc3\xa9 HTTP/1.1\r\nHost: x\r\n\r\n",
            b"GET / HTTP/1.1\r\nHost: x\r\nX: a\x07b\r\n\r\n",
            b"GET / HTTP/1.1\r\nHost: x\r\nX: a\x7fb\r\n\r\n",
            b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n",
            b"GET / HTTP/1.1\nHost: x\n\n",
            b"GET / HTTP/1.1\r\nHost: x\n\r\n",
            b"GET example.com:80 HTTP/1.1\r\nHost: x\r\n\r\n",
            b"GET * HTTP/1.1\r\nHost: x\r\n\r\n",
            b"GET / HTTP/1.1\r\nHost: x\r\n folded\r\n\r\n",
            b"GET / HTTP/1.1\r\nHost : x\r\n\r\n",
            b"GET / HTTP/1.1\r\n\r\n",
            b"GET / HTTP/1.1\r\nHost: x\r\nHost: y\r\n\r\n",
            b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nContent-Length: 3\r\n\r\n",
            b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 3, 3\r\n\r\n",
            b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: +3\r\n\r\n",
            b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked, gzip\r\n\r\n",
            b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n",
            b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: xchunked\r\n\r\n",
            b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding : chunked\r\n\r\n",
            b"POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n",
            b"GET  / HTTP/1.1\r\nHost: x\r\n\r\n",
            b"GET / HTTP/1.1 \r\nHost: x\r\n\r\n",
            b"GET / http/1.1\r\nHost: x\r\n\r\n",
            b"CONNECT /x HTTP/1.1\r\nHost: x\r\n\r\n",
        ] {
            assert_eq!(verdict(request), bad, "{}", String::from_utf8_lossy(request).escape_debug());
        }
        assert_eq!(
            verdict(b"GET / HTTP/1.2\r\nHost: x\r\n\r\n"),
            Step::RefuseMessage(StatusCode::HTTP_VERSION_NOT_SUPPORTED)
        );
    }

    #[test]
    fn broken_chunked_bodies_end_the_connection() {
        let head = b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n".to_vec();
        for body in [
            &b"3;a\rb\r\nabc\r\n0\r\n\r\n"[..],
            b"3 \r\nabc\r\n0\r\n\r\n",
            b" 3\r\nabc\r\n0\r\n\r\n",
            b"3\nabc\r\n0\r\n\r\n",
            b"3\r\nabcX\r\n0\r\n\r\n",
            b"0x3\r\nabc\r\n0\r\n\r\n",
            b"11111111111111111\r\n",
            b"0\r\nContent-Length: 5\r\n\r\n",
            b"0\r\nTransfer-Encoding: chunked\r\n\r\n",
            b"0\r\nHost: y\r\n\r\n",
            b"0\r\nX: a\nb\r\n\r\n",
        ] {
            let input = [head.as_slice(), body].concat();
            assert_eq!(verdict(&input), Step::BreakBody, "{}", String::from_utf8_lossy(body).escape_debug());
        }
        // Whitespace before the `;` of an extension is allowed (BWS).
        let spaced = [head.as_slice(), b"3 ;a=b\r\nabc\r\n0\r\n\r\n"].concat();
        assert!(matches!(verdict(&spaced), Step::Release(_)));
    }

    #[test]
    fn bytes_arriving_one_at_a_time_give_the_same_framing() {
        let input = b"POST /u HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n4;x=\"y\"\r\nwiki\r\n0\r\nT: v\r\n\r\nGET / HTTP/1.1\r\nHost: x\r\n\r\n";
        let mut checker = Http1Checker::default();
        let (mut start, mut end) = (0, 1);
        while start < input.len() {
            match checker.step(&input[start..end]) {
                Step::Release(n) => start += n,
                Step::NeedMore => end += 1,
                other => panic!("{other:?} at {start}..{end}"),
            }
            end = end.max(start + 1).min(input.len());
        }
        assert!(matches!(checker.phase, Phase::Head { first: false }));
    }

    #[test]
    fn an_incomplete_head_is_searched_only_where_new_bytes_arrived() {
        let head = b"GET / HTTP/1.1\r\nHost: x\r\nX-Long: abc";
        let mut checker = Http1Checker::default();
        assert_eq!(checker.step(head), Step::NeedMore);
        assert_eq!(checker.scanned, 25, "the start of the unfinished line");
        let more = [&head[..], b"def\r\n"].concat();
        assert_eq!(checker.step(&more), Step::NeedMore);
        assert_eq!(checker.scanned, more.len());
        let whole = [&more[..], b"\r\n"].concat();
        assert_eq!(checker.step(&whole), Step::Release(whole.len()));
        assert_eq!(checker.scanned, 0);
    }

    #[test]
    fn upgrades_and_the_http2_preface_stop_the_checking() {
        let upgrade = b"GET /ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: upgrade\r\n\r\n\x81\x05hello";
        assert_eq!(run(upgrade), vec![Step::Release(upgrade.len() - 7), Step::AwaitUpgrade]);
        // Switched: the rest passes; refused: the rest is checked as requests again.
        let mut switched = Http1Checker::default();
        switched.step(upgrade);
        switched.resolve_upgrade(true);
        assert_eq!(switched.step(b"\x81\x05hello"), Step::PassThrough);
        let mut refused = Http1Checker::default();
        refused.step(upgrade);
        refused.resolve_upgrade(false);
        assert_eq!(refused.step(b"GET / HTTP/1.1\nHost: x\n\n"), Step::RefuseMessage(StatusCode::BAD_REQUEST));
        assert_eq!(verdict(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"), Step::PassThrough);
        let late = b"GET / HTTP/1.1\r\nHost: x\r\n\r\nPRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
        assert_eq!(verdict(late), Step::RefuseMessage(StatusCode::BAD_REQUEST));
    }

    #[test]
    fn what_follows_a_message_that_closes_the_connection_is_not_checked() {
        let head = b"HEAD / HTTP/1.1\r\nHost: x\r\nConnection: keep-alive, Close\r\n\r\n";
        let mut checker = Http1Checker::default();
        assert_eq!(checker.step(head), Step::Release(head.len()));
        assert_eq!(checker.step(b"0\r\n\r\n"), Step::PassThrough);
        // After its body, chunked or not.
        let posted = b"POST / HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Length: 3\r\n\r\nabcGET";
        assert_eq!(run(posted), vec![Step::Release(posted.len() - 6), Step::Release(3), Step::PassThrough]);
        let chunked =
            b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n0\r\n\r\nxx";
        assert_eq!(verdict(chunked), Step::PassThrough);
        // Only a whole `close` token in a plain-ASCII value counts, as for hyper.
        for other in [&b"closed"[..], b"keep-alive", b"clo se", b"close\x80"] {
            let mut head = b"GET / HTTP/1.1\r\nHost: x\r\nConnection: ".to_vec();
            head.extend_from_slice(other);
            head.extend_from_slice(b"\r\n\r\nGET / HTTP/1.1\nHost: x\n\n");
            assert_eq!(verdict(&head), Step::RefuseMessage(StatusCode::BAD_REQUEST), "{other:?}");
        }
    }

    /// Property tests: generated requests, mutated ones and arbitrary bytes, delivered whole and in
    /// arbitrary pieces (as a socket may deliver them).
    mod properties {
        use super::*;
        use proptest::prelude::*;

        /// Feeds `input` as the stream does when it arrives in pieces ending at `cuts`: unreleased
        /// bytes are offered again with what arrived since. Returns the bytes released and the
        /// verdict that ended the checking (None: everything released, or waiting for more).
        fn deliver(input: &[u8], cuts: &[usize]) -> (usize, Option<Step>) {
            let mut checker = Http1Checker::default();
            let mut ends: Vec<usize> = cuts.iter().map(|cut| cut % (input.len() + 1)).collect();
            ends.sort_unstable();
            ends.push(input.len());
            let mut at = 0;
            for available in ends {
                while at < available {
                    match checker.step(&input[at..available]) {
                        Step::Release(n) => {
                            assert!(n > 0 && at + n <= available, "released {n} of {}", available - at);
                            at += n;
                        }
                        Step::NeedMore => break,
                        other => return (at, Some(other)),
                    }
                }
            }
            (at, None)
        }

        fn token() -> impl Strategy<Value = String> {
            "[A-Za-z][A-Za-z0-9!#$%&'*+.^_`|~-]{0,12}".prop_filter(
                "framing and routing headers are generated on purpose",
                |name| {
                    let name = name.to_ascii_lowercase();
                    !["host", "content-length", "transfer-encoding", "upgrade", "connection", "expect"]
                        .contains(&name.as_str())
                },
            )
        }

        fn body() -> impl Strategy<Value = (String, Vec<u8>)> {
            let bytes = proptest::collection::vec(any::<u8>(), 0..40);
            prop_oneof![
                Just((String::new(), Vec::new())),
                bytes.clone().prop_map(|body| (format!("Content-Length: {}\r\n", body.len()), body)),
                (proptest::collection::vec(bytes, 0..4), any::<bool>(), any::<bool>()).prop_map(
                    |(chunks, extension, trailer)| {
                        let mut body = Vec::new();
                        for chunk in chunks.iter().filter(|chunk| !chunk.is_empty()) {
                            let ext = if extension { ";name=\"v\"" } else { "" };
                            body.extend_from_slice(format!("{:x}{ext}\r\n", chunk.len()).as_bytes());
                            body.extend_from_slice(chunk);
                            body.extend_from_slice(b"\r\n");
                        }
                        body.extend_from_slice(if trailer { b"0\r\nX-Digest: abc\r\n\r\n" } else { b"0\r\n\r\n" });
                        ("Transfer-Encoding: chunked\r\n".to_string(), body)
                    }
                ),
            ]
        }

        prop_compose! {
            fn message()(
                method in prop_oneof![Just("GET"), Just("POST"), Just("PUT"), Just("DELETE"), Just("PATCH")],
                path in "/[a-zA-Z0-9._~/-]{0,20}(\\?[a-z0-9=&]{0,10})?",
                http10 in any::<bool>(),
                headers in proptest::collection::vec((token(), "[ -~]{0,20}"), 0..6),
                (framing, body) in body(),
            ) -> Vec<u8> {
                let http10 = http10 && !framing.starts_with("Transfer-Encoding");
                let mut head = format!("{method} {path} HTTP/1.{}\r\n", if http10 { 0 } else { 1 });
                if !http10 {
                    head.push_str("Host: example\r\n");
                }
                for (name, value) in headers {
                    head.push_str(&format!("{name}: {}\r\n", value.trim()));
                }
                head.push_str(&framing);
                head.push_str("\r\n");
                [head.into_bytes(), body].concat()
            }
        }

        fn messages() -> impl Strategy<Value = Vec<u8>> {
            proptest::collection::vec(message(), 1..4).prop_map(|messages| messages.concat())
        }

        /// Bytes that matter to HTTP/1 framing, for mutations.
        const INTERESTING: &[u8] = b"\r\n\0\t :;,=\"0123456789abcdefxX-\x7f\x80\xff";

        fn mutated() -> impl Strategy<Value = Vec<u8>> {
            let edit = (any::<prop::sample::Index>(), 0..3u8, prop::sample::select(INTERESTING));
            (messages(), proptest::collection::vec(edit, 1..4)).prop_map(|(mut input, edits)| {
                for (at, kind, byte) in edits {
                    let at = at.index(input.len() + 1);
                    match kind {
                        0 => input.insert(at, byte),
                        1 if at < input.len() => input[at] = byte,
                        _ if at < input.len() => {
                            input.remove(at);
                        }
                        _ => input.push(byte),
                    }
                }
                input
            })
        }

        proptest! {
            #[test]
            fn valid_requests_are_released_whole_in_any_pieces(
                input in messages(),
                cuts in proptest::collection::vec(any::<usize>(), 0..8),
            ) {
                prop_assert_eq!(deliver(&input, &[]), (input.len(), None));
                prop_assert_eq!(deliver(&input, &cuts), (input.len(), None));
            }

            #[test]
            fn mutated_requests_get_the_same_verdict_in_any_pieces(
                input in mutated(),
                cuts in proptest::collection::vec(any::<usize>(), 1..8),
            ) {
                prop_assert_eq!(deliver(&input, &cuts), deliver(&input, &[]));
            }

            #[test]
            fn arbitrary_bytes_get_the_same_verdict_in_any_pieces(
                input in proptest::collection::vec(any::<u8>(), 0..300),
                cuts in proptest::collection::vec(any::<usize>(), 1..8),
            ) {
                prop_assert_eq!(deliver(&input, &cuts), deliver(&input, &[]));
            }
        }
    }
}
