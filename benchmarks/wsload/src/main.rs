//! WebSocket load for granian's benchmarks: an echo load (every connection sends a text message and
//! waits for its echo, over and over) and an idle-connection holder (for memory readings).
//!
//!     wsload echo --port P [--path /ws] --connections C --size BYTES --seconds S [--deflate]
//!     wsload idle --port P [--path /ws] --connections N [--hold-seconds S]
//!
//! `echo` prints one JSON object: messages, seconds, rate (messages per second), p50_ms, p99_ms,
//! errors. `idle` prints `{"open": N, "errors": E}` once every connection is open (or failed), then
//! holds them until its standard input closes or the hold time passes. With `--deflate` the client
//! offers permessage-deflate (with client_no_context_takeover, so the compressed request frame is
//! built once) and inflates the server's compressed answers with a context kept per connection.
//! One thread: the benchmark harness pins the tool to one CPU.

use std::io::Write;
use std::sync::Arc;
use std::time::{Duration, Instant};

use flate2::{Compress, Compression, Decompress, FlushCompress, FlushDecompress, Status};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

const MASK: [u8; 4] = [0x37, 0xfa, 0x21, 0x3d];
/// Handshakes in flight at once when opening idle connections.
const OPENING_AT_ONCE: usize = 200;
const DEFLATE_TAIL: [u8; 4] = [0x00, 0x00, 0xff, 0xff];

type Error = Box<dyn std::error::Error + Send + Sync>;

struct Args {
    mode: String,
    host: String,
    port: u16,
    path: String,
    connections: usize,
    size: usize,
    seconds: f64,
    hold_seconds: f64,
    deflate: bool,
}

fn parse_args() -> Result<Args, Error> {
    let mut argv = std::env::args().skip(1);
    let mode = argv.next().ok_or("usage: wsload echo|idle --port P ...")?;
    if mode != "echo" && mode != "idle" {
        return Err(format!("unknown mode {mode:?}: echo or idle").into());
    }
    let mut args = Args {
        mode,
        host: "127.0.0.1".into(),
        port: 0,
        path: "/ws".into(),
        connections: 64,
        size: 20,
        seconds: 2.0,
        hold_seconds: 60.0,
        deflate: false,
    };
    while let Some(flag) = argv.next() {
        if flag == "--deflate" {
            args.deflate = true;
            continue;
        }
        let value = argv.next().ok_or_else(|| format!("{flag} needs a value"))?;
        match flag.as_str() {
            "--host" => args.host = value,
            "--port" => args.port = value.parse()?,
            "--path" => args.path = value,
            "--connections" => args.connections = value.parse()?,
            "--size" => args.size = value.parse()?,
            "--seconds" => args.seconds = value.parse()?,
            "--hold-seconds" => args.hold_seconds = value.parse()?,
            _ => return Err(format!("unknown option {flag}").into()),
        }
    }
    if args.port == 0 || args.connections == 0 {
        return Err("--port and a non-zero --connections are needed".into());
    }
    Ok(args)
}

/// The text payload: printable ASCII that compresses about as well as JSON does.
fn payload(size: usize) -> Vec<u8> {
    let words = b"{\"user\": 1234, \"event\": \"update\", \"value\": 42.5, \"tags\": [\"a\", \"b\"]} ";
    words.iter().copied().cycle().take(size).collect()
}

/// A masked client frame: FIN, the opcode and RSV1 when `compressed`.
fn client_frame(opcode: u8, compressed: bool, data: &[u8]) -> Vec<u8> {
    let mut frame = Vec::with_capacity(data.len() + 14);
    frame.push(0x80 | if compressed { 0x40 } else { 0 } | opcode);
    match data.len() {
        len @ 0..=125 => frame.push(0x80 | len as u8),
        len @ 126..=0xffff => {
            frame.push(0x80 | 126);
            frame.extend_from_slice(&(len as u16).to_be_bytes());
        }
        len => {
            frame.push(0x80 | 127);
            frame.extend_from_slice(&(len as u64).to_be_bytes());
        }
    }
    frame.extend_from_slice(&MASK);
    frame.extend(data.iter().enumerate().map(|(i, byte)| byte ^ MASK[i % 4]));
    frame
}

/// Raw deflate of one message with a fresh context, without the 00 00 ff ff tail (RFC 7692).
fn deflate_message(data: &[u8]) -> Result<Vec<u8>, Error> {
    let mut compress = Compress::new(Compression::default(), false);
    let mut out = Vec::with_capacity(data.len() + 64);
    compress.compress_vec(data, &mut out, FlushCompress::Sync)?;
    while out.len() == out.capacity() {
        out.reserve(out.len());
        compress.compress_vec(&[], &mut out, FlushCompress::Sync)?;
    }
    if out.ends_with(&DEFLATE_TAIL) {
        out.truncate(out.len() - 4);
    }
    Ok(out)
}

struct Connection {
    reader: BufReader<tokio::net::tcp::OwnedReadHalf>,
    writer: tokio::net::tcp::OwnedWriteHalf,
    inflate: Option<Decompress>,
}

async fn open(args: &Args, key_seed: usize) -> Result<Connection, Error> {
    let stream = TcpStream::connect((args.host.as_str(), args.port)).await?;
    stream.set_nodelay(true)?;
    let (read, mut writer) = stream.into_split();
    let extension = if args.deflate {
        "Sec-WebSocket-Extensions: permessage-deflate; client_no_context_takeover\r\n"
    } else {
        ""
    };
    // Any 16 bytes, base64-encoded, make a valid key; the server's accept value is not checked.
    let key = format!("d3Nsb2FkLWtleS0{:05}Aw==", key_seed % 100_000);
    let request = format!(
        "GET {} HTTP/1.1\r\nHost: {}:{}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n{extension}\r\n",
        args.path, args.host, args.port
    );
    writer.write_all(request.as_bytes()).await?;
    let mut reader = BufReader::with_capacity(64 * 1024, read);
    let mut status = String::new();
    reader.read_line(&mut status).await?;
    if !status.starts_with("HTTP/1.1 101") {
        return Err(format!("handshake answered {:?}", status.trim()).into());
    }
    let mut deflate_agreed = false;
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).await? == 0 {
            return Err("connection closed during the handshake".into());
        }
        if line == "\r\n" {
            break;
        }
        let lower = line.to_ascii_lowercase();
        if lower.starts_with("sec-websocket-extensions:") && lower.contains("permessage-deflate") {
            deflate_agreed = true;
        }
    }
    if args.deflate && !deflate_agreed {
        return Err("the server did not agree to permessage-deflate".into());
    }
    let inflate = deflate_agreed.then(|| Decompress::new(false));
    Ok(Connection { reader, writer, inflate })
}

impl Connection {
    /// Reads one whole message (answering pings on the way); returns its length after inflating.
    async fn read_message(&mut self, scratch: &mut Vec<u8>, inflated: &mut Vec<u8>) -> Result<usize, Error> {
        scratch.clear();
        let mut compressed = false;
        loop {
            let mut head = [0u8; 2];
            self.reader.read_exact(&mut head).await?;
            let opcode = head[0] & 0x0f;
            let fin = head[0] & 0x80 != 0;
            if opcode == 0x1 || opcode == 0x2 {
                compressed = head[0] & 0x40 != 0;
            }
            let len = match head[1] & 0x7f {
                126 => u64::from(self.reader.read_u16().await?),
                127 => self.reader.read_u64().await?,
                short => u64::from(short),
            };
            let len = usize::try_from(len)?;
            match opcode {
                0x8 => return Err("the server closed the connection".into()),
                0x9 => {
                    let mut data = vec![0u8; len];
                    self.reader.read_exact(&mut data).await?;
                    self.writer.write_all(&client_frame(0xa, false, &data)).await?;
                    continue;
                }
                0xa => {
                    let mut data = vec![0u8; len];
                    self.reader.read_exact(&mut data).await?;
                    continue;
                }
                _ => {}
            }
            let start = scratch.len();
            scratch.resize(start + len, 0);
            self.reader.read_exact(&mut scratch[start..]).await?;
            if fin {
                break;
            }
        }
        match (&mut self.inflate, compressed) {
            (Some(inflate), true) => {
                scratch.extend_from_slice(&DEFLATE_TAIL);
                inflated.clear();
                let mut consumed = 0;
                loop {
                    if inflated.len() == inflated.capacity() {
                        inflated.reserve(inflated.capacity().max(4096));
                    }
                    let before = inflate.total_in();
                    let status = inflate.decompress_vec(&scratch[consumed..], inflated, FlushDecompress::Sync)?;
                    consumed += usize::try_from(inflate.total_in() - before)?;
                    if consumed >= scratch.len() && inflated.len() < inflated.capacity() {
                        break;
                    }
                    if status == Status::StreamEnd {
                        break;
                    }
                }
                Ok(inflated.len())
            }
            (None, true) => Err("a compressed message without permessage-deflate".into()),
            _ => Ok(scratch.len()),
        }
    }
}

struct EchoOutcome {
    messages: u64,
    latencies_us: Vec<u32>,
    error: Option<String>,
}

async fn echo_connection(args: Arc<Args>, index: usize, frame: Arc<Vec<u8>>, deadline: Instant) -> EchoOutcome {
    let mut outcome = EchoOutcome { messages: 0, latencies_us: Vec::with_capacity(1 << 14), error: None };
    let mut connection = match open(&args, index).await {
        Ok(connection) => connection,
        Err(err) => {
            outcome.error = Some(err.to_string());
            return outcome;
        }
    };
    let mut scratch = Vec::with_capacity(args.size + 64);
    let mut inflated = Vec::with_capacity(args.size + 64);
    while Instant::now() < deadline {
        let sent = Instant::now();
        let result = async {
            connection.writer.write_all(&frame).await?;
            connection.read_message(&mut scratch, &mut inflated).await
        };
        match tokio::time::timeout(Duration::from_secs(10), result).await {
            Ok(Ok(len)) if len == args.size => {
                outcome.messages += 1;
                outcome.latencies_us.push(u32::try_from(sent.elapsed().as_micros()).unwrap_or(u32::MAX));
            }
            Ok(Ok(len)) => {
                outcome.error = Some(format!("echo of {len} bytes instead of {}", args.size));
                return outcome;
            }
            Ok(Err(err)) => {
                outcome.error = Some(err.to_string());
                return outcome;
            }
            Err(_) => {
                outcome.error = Some("no echo within 10 s".into());
                return outcome;
            }
        }
    }
    let _ = connection.writer.write_all(&client_frame(0x8, false, &1000u16.to_be_bytes())).await;
    outcome
}

fn percentile(sorted: &[u32], fraction: f64) -> Option<f64> {
    if sorted.is_empty() {
        return None;
    }
    let index = ((sorted.len() as f64 * fraction) as usize).min(sorted.len() - 1);
    Some(f64::from(sorted[index]) / 1000.0)
}

fn json_number(value: Option<f64>) -> String {
    value.map_or_else(|| "null".to_owned(), |v| format!("{v:.3}"))
}

async fn run_echo(args: Arc<Args>) -> Result<(), Error> {
    let data = payload(args.size);
    let frame = if args.deflate { client_frame(0x1, true, &deflate_message(&data)?) } else { client_frame(0x1, false, &data) };
    let started = Instant::now();
    let deadline = started + Duration::from_secs_f64(args.seconds);
    let frame = Arc::new(frame);
    let tasks: Vec<_> =
        (0..args.connections).map(|index| echo_connection(args.clone(), index, frame.clone(), deadline)).collect();
    let outcomes = join_all(tasks).await;
    let elapsed = started.elapsed().as_secs_f64();
    let mut latencies: Vec<u32> = outcomes.iter().flat_map(|o| o.latencies_us.iter().copied()).collect();
    latencies.sort_unstable();
    let messages: u64 = outcomes.iter().map(|o| o.messages).sum();
    let errors: Vec<&str> = outcomes.iter().filter_map(|o| o.error.as_deref()).collect();
    let first_error = errors.first().map_or_else(|| "null".to_owned(), |e| format!("{e:?}"));
    println!(
        "{{\"messages\": {messages}, \"seconds\": {elapsed:.3}, \"rate\": {:.1}, \"p50_ms\": {}, \"p99_ms\": {}, \
         \"errors\": {}, \"first_error\": {first_error}}}",
        messages as f64 / elapsed,
        json_number(percentile(&latencies, 0.5)),
        json_number(percentile(&latencies, 0.99)),
        errors.len(),
    );
    Ok(())
}

async fn run_idle(args: Arc<Args>) -> Result<(), Error> {
    let mut open_connections = Vec::with_capacity(args.connections);
    let mut errors = 0usize;
    let mut first_error = None;
    let mut next = 0;
    while next < args.connections {
        let batch_end = (next + OPENING_AT_ONCE).min(args.connections);
        let batch: Vec<_> = (next..batch_end)
            .map(|index| {
                let args = args.clone();
                async move { open(&args, index).await.map_err(|err| err.to_string()) }
            })
            .collect();
        for result in join_all(batch).await {
            match result {
                Ok(connection) => open_connections.push(connection),
                Err(err) => {
                    errors += 1;
                    first_error.get_or_insert(err);
                }
            }
        }
        next = batch_end;
    }
    let first_error = first_error.map_or_else(|| "null".to_owned(), |e| format!("{e:?}"));
    println!("{{\"open\": {}, \"errors\": {errors}, \"first_error\": {first_error}}}", open_connections.len());
    std::io::stdout().flush()?;
    let mut stdin = tokio::io::stdin();
    let mut byte = [0u8; 1];
    let _ = tokio::time::timeout(Duration::from_secs_f64(args.hold_seconds), stdin.read(&mut byte)).await;
    drop(open_connections);
    Ok(())
}

/// Spawns the futures as tasks (on this one thread) and returns their outputs in order.
async fn join_all<F>(futures: Vec<F>) -> Vec<F::Output>
where
    F: std::future::Future + Send + 'static,
    F::Output: Send + 'static,
{
    let handles: Vec<_> = futures.into_iter().map(tokio::spawn).collect();
    let mut outputs = Vec::with_capacity(handles.len());
    for handle in handles {
        outputs.push(handle.await.expect("a load task panicked"));
    }
    outputs
}

fn main() {
    let args = match parse_args() {
        Ok(args) => args,
        Err(err) => {
            eprintln!("wsload: {err}");
            std::process::exit(2);
        }
    };
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("tokio runtime");
    let args = Arc::new(args);
    let result = runtime.block_on(async {
        if args.mode == "echo" {
            run_echo(args).await
        } else {
            run_idle(args).await
        }
    });
    if let Err(err) = result {
        eprintln!("wsload: {err}");
        std::process::exit(1);
    }
}
