//! Container log files in the CRI log format, as the kubelet and containerd write them:
//! one entry per line, `TIMESTAMP STREAM TAG CONTENT`, e.g.
//!
//! ```text
//! 2026-12-06T04:10:33.123456789Z stdout F hello
//! ```
//!
//! where the timestamp is RFC 3339 in UTC with nanoseconds, the stream is `stdout` or
//! `stderr`, and the tag is `F` for a full line or `P` for a part of a longer one (lines
//! longer than [`MAX_ENTRY_BYTES`] are written as several `P` entries and a final `F`).
//!
//! [`LogWriter`] appends entries and rotates the file when it grows past its limit
//! (`PATH` → `PATH.1` → `PATH.2` …, keeping `max_files` files in all, the live one
//! included). [`read_logs`] and [`follow_logs`] read them back for `kubectl logs`: rotated
//! files first (oldest first), partial entries joined into their line, optionally with
//! timestamps, the last N lines, lines since a time, and at most N bytes, as the kubelet
//! serves them.

use std::fs::{File, OpenOptions};
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use futures::Stream;
use hyper::body::Bytes;

/// The longest content of one entry; longer lines are split into `P` entries
/// (containerd's and the kubelet's limit, 16 KiB).
pub const MAX_ENTRY_BYTES: usize = 16 * 1024;

/// How often [`follow_logs`] looks for new entries.
pub const FOLLOW_POLL: Duration = Duration::from_millis(200);

/// Which output stream of the container an entry came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum LogStream {
    /// Standard output.
    Stdout,
    /// Standard error.
    Stderr,
}

impl LogStream {
    /// `stdout` or `stderr`, as written in the file.
    pub fn as_str(self) -> &'static str {
        match self {
            LogStream::Stdout => "stdout",
            LogStream::Stderr => "stderr",
        }
    }
}

/// Formats a time as the CRI log format writes it: RFC 3339 in UTC with nine fractional
/// digits (`2026-12-06T04:10:33.123456789Z`). Times before 1970 are written as the epoch.
pub fn format_timestamp(ts: SystemTime) -> String {
    let d = ts.duration_since(UNIX_EPOCH).unwrap_or_default();
    let secs = d.as_secs();
    let days = (secs / 86_400) as i64;
    let rem = secs % 86_400;
    // Howard Hinnant's civil_from_days.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{:09}Z",
        rem / 3600,
        rem / 60 % 60,
        rem % 60,
        d.subsec_nanos()
    )
}

/// Parses an RFC 3339 timestamp (any fractional precision, any offset).
pub fn parse_timestamp(s: &str) -> Option<SystemTime> {
    s.parse::<jiff::Timestamp>().ok().map(SystemTime::from)
}

/// Appends entries to a container's log file in the CRI format, rotating it.
///
/// Each entry is written with one `write` call on a file opened for appending, so a
/// reader never sees half an entry except at the very end of the live file.
#[derive(Debug)]
pub struct LogWriter {
    path: PathBuf,
    file: File,
    size: u64,
    max_bytes: u64,
    max_files: u32,
}

impl LogWriter {
    /// Opens (or creates, with its parent directories) the log file at `path` for
    /// appending. It is rotated when an entry would take it past `max_bytes` (0: never),
    /// keeping `max_files` files in all (`path` and `path.1` … `path.{max_files - 1}`;
    /// 0 or 1: only the live file, the old content is dropped).
    pub fn open(path: impl Into<PathBuf>, max_bytes: u64, max_files: u32) -> io::Result<Self> {
        let path = path.into();
        if let Some(dir) = path.parent() {
            if !dir.as_os_str().is_empty() {
                std::fs::create_dir_all(dir)?;
            }
        }
        let file = OpenOptions::new().create(true).append(true).open(&path)?;
        let size = file.metadata()?.len();
        Ok(Self {
            path,
            file,
            size,
            max_bytes,
            max_files,
        })
    }

    /// The live file's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Writes one line of output (without its newline). `partial` marks a line that the
    /// container has not finished (it continues in the next call): the entry is tagged
    /// `P`. A line longer than [`MAX_ENTRY_BYTES`] is split into `P` entries; a newline
    /// inside `line` ends an entry there (the file stays one entry per line).
    pub fn write(
        &mut self,
        stream: LogStream,
        ts: SystemTime,
        line: &[u8],
        partial: bool,
    ) -> io::Result<()> {
        let ts = format_timestamp(ts);
        let mut segments = line.split(|&b| b == b'\n').peekable();
        while let Some(segment) = segments.next() {
            let last_segment = segments.peek().is_none();
            let mut chunks = segment.chunks(MAX_ENTRY_BYTES).peekable();
            if segment.is_empty() {
                self.write_entry(&ts, stream, last_segment && partial, b"")?;
            }
            while let Some(chunk) = chunks.next() {
                let last = chunks.peek().is_none();
                self.write_entry(&ts, stream, !last || (last_segment && partial), chunk)?;
            }
        }
        Ok(())
    }

    fn write_entry(
        &mut self,
        ts: &str,
        stream: LogStream,
        partial: bool,
        content: &[u8],
    ) -> io::Result<()> {
        let mut entry = Vec::with_capacity(ts.len() + content.len() + 12);
        entry.extend_from_slice(ts.as_bytes());
        entry.push(b' ');
        entry.extend_from_slice(stream.as_str().as_bytes());
        entry.extend_from_slice(if partial { b" P " } else { b" F " });
        entry.extend_from_slice(content);
        entry.push(b'\n');
        if self.max_bytes > 0 && self.size > 0 && self.size + entry.len() as u64 > self.max_bytes {
            self.rotate()?;
        }
        self.file.write_all(&entry)?;
        self.size += entry.len() as u64;
        Ok(())
    }

    /// Moves `path.{i}` to `path.{i+1}` (dropping the oldest), `path` to `path.1`, and
    /// starts a new live file.
    fn rotate(&mut self) -> io::Result<()> {
        if self.max_files <= 1 {
            remove_if_exists(&self.path)?;
        } else {
            remove_if_exists(&numbered(&self.path, self.max_files - 1))?;
            for i in (1..self.max_files - 1).rev() {
                let from = numbered(&self.path, i);
                if from.exists() {
                    std::fs::rename(&from, numbered(&self.path, i + 1))?;
                }
            }
            std::fs::rename(&self.path, numbered(&self.path, 1))?;
        }
        self.file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.path)?;
        self.size = 0;
        Ok(())
    }
}

fn remove_if_exists(path: &Path) -> io::Result<()> {
    match std::fs::remove_file(path) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e),
        _ => Ok(()),
    }
}

fn numbered(path: &Path, i: u32) -> PathBuf {
    let mut s = path.as_os_str().to_owned();
    s.push(format!(".{i}"));
    PathBuf::from(s)
}

/// The files of one log, oldest first: the rotated ones (`PATH.N` … `PATH.1`) that
/// exist, then `PATH` if it exists.
pub fn log_files(path: &Path) -> io::Result<Vec<PathBuf>> {
    let mut rotated: Vec<(u32, PathBuf)> = Vec::new();
    let (Some(dir), Some(name)) = (path.parent(), path.file_name()) else {
        return Ok(Vec::new());
    };
    let dir = if dir.as_os_str().is_empty() {
        Path::new(".")
    } else {
        dir
    };
    let prefix = format!("{}.", name.to_string_lossy());
    match std::fs::read_dir(dir) {
        Ok(entries) => {
            for entry in entries {
                let entry = entry?;
                let file_name = entry.file_name();
                let file_name = file_name.to_string_lossy();
                if let Some(n) = file_name
                    .strip_prefix(&prefix)
                    .and_then(|s| s.parse::<u32>().ok())
                {
                    rotated.push((n, entry.path()));
                }
            }
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(e),
    }
    rotated.sort_by_key(|r| std::cmp::Reverse(r.0));
    let mut files: Vec<PathBuf> = rotated.into_iter().map(|(_, p)| p).collect();
    if path.exists() {
        files.push(path.to_path_buf());
    }
    Ok(files)
}

/// What to read of a log (the parameters of `kubectl logs`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LogOptions {
    /// Only the last N lines (`--tail`).
    pub tail_lines: Option<usize>,
    /// Only lines written at or after this time (`--since`, `--since-time`).
    pub since: Option<SystemTime>,
    /// Each line prefixed with its RFC 3339 timestamp and a space (`--timestamps`).
    pub timestamps: bool,
    /// At most this many bytes in all (`--limit-bytes`).
    pub limit_bytes: Option<u64>,
}

/// One parsed entry of a log file.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Entry {
    ts_raw: String,
    ts: Option<SystemTime>,
    stream: LogStream,
    partial: bool,
    content: Vec<u8>,
}

/// Parses `TIMESTAMP STREAM TAG CONTENT` (without the newline); `None` for a line that
/// is not an entry.
fn parse_entry(line: &[u8]) -> Option<Entry> {
    let mut parts = line.splitn(4, |&b| b == b' ');
    let ts_raw = std::str::from_utf8(parts.next()?).ok()?.to_string();
    let stream = match parts.next()? {
        b"stdout" => LogStream::Stdout,
        b"stderr" => LogStream::Stderr,
        _ => return None,
    };
    // The tag may carry more tags after `:`; the first says partial or full.
    let partial = parts.next()?.first() == Some(&b'P');
    let content = parts.next().unwrap_or_default().to_vec();
    let ts = parse_timestamp(&ts_raw);
    Some(Entry {
        ts_raw,
        ts,
        stream,
        partial,
        content,
    })
}

/// One line of output: entries of a stream joined until a full one.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Line {
    ts_raw: String,
    ts: Option<SystemTime>,
    content: Vec<u8>,
    /// Ended by a full entry (a newline); false for a line the container never finished.
    complete: bool,
}

impl Line {
    fn render(&self, timestamps: bool, out: &mut Vec<u8>) {
        if timestamps {
            out.extend_from_slice(self.ts_raw.as_bytes());
            out.push(b' ');
        }
        out.extend_from_slice(&self.content);
        if self.complete {
            out.push(b'\n');
        }
    }

    fn since_ok(&self, since: Option<SystemTime>) -> bool {
        match (since, self.ts) {
            (Some(since), Some(ts)) => ts >= since,
            _ => true,
        }
    }
}

/// Joins partial entries per stream.
#[derive(Debug, Default)]
struct Assembler {
    pending: [Option<Line>; 2],
}

impl Assembler {
    fn push(&mut self, e: Entry) -> Option<Line> {
        let slot = &mut self.pending[e.stream as usize];
        let mut line = slot.take().unwrap_or(Line {
            ts_raw: e.ts_raw,
            ts: e.ts,
            content: Vec::new(),
            complete: false,
        });
        line.content.extend_from_slice(&e.content);
        if e.partial {
            *slot = Some(line);
            None
        } else {
            line.complete = true;
            Some(line)
        }
    }

    /// The unfinished lines, oldest first.
    fn drain(&mut self) -> Vec<Line> {
        let mut lines: Vec<Line> = self.pending.iter_mut().filter_map(Option::take).collect();
        lines.sort_by_key(|l| l.ts);
        lines
    }
}

/// Splits `buf` into newline-terminated text lines, feeding the entries to `asm` and the
/// lines they end to `lines`; the unterminated rest stays in `buf`.
fn feed(buf: &mut Vec<u8>, asm: &mut Assembler, lines: &mut Vec<Line>) {
    let mut start = 0;
    while let Some(n) = buf[start..].iter().position(|&b| b == b'\n') {
        if let Some(line) = parse_entry(&buf[start..start + n]).and_then(|e| asm.push(e)) {
            lines.push(line);
        }
        start += n + 1;
    }
    buf.drain(..start);
}

/// Renders lines with `--since` and `--tail` applied.
fn render_selected(lines: &[Line], opts: &LogOptions, out: &mut Vec<u8>) {
    let selected: Vec<&Line> = lines.iter().filter(|l| l.since_ok(opts.since)).collect();
    let skip = match opts.tail_lines {
        Some(n) => selected.len().saturating_sub(n),
        None => 0,
    };
    for line in &selected[skip..] {
        line.render(opts.timestamps, out);
    }
}

fn apply_limit(out: &mut Vec<u8>, limit: Option<u64>) {
    if let Some(limit) = limit {
        out.truncate(usize::try_from(limit).unwrap_or(usize::MAX));
    }
}

/// Reads a container's log as `kubectl logs` shows it: every file of the log in order
/// (see [`log_files`]), partial entries joined, with the options applied. A missing log
/// is empty.
pub fn read_logs(path: &Path, opts: &LogOptions) -> io::Result<Vec<u8>> {
    let mut asm = Assembler::default();
    let mut lines = Vec::new();
    for file in log_files(path)? {
        let mut buf = match std::fs::read(&file) {
            Ok(b) => b,
            // Rotated away between the listing and the read.
            Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
            Err(e) => return Err(e),
        };
        if !buf.ends_with(b"\n") && !buf.is_empty() {
            buf.push(b'\n');
        }
        feed(&mut buf, &mut asm, &mut lines);
    }
    lines.extend(asm.drain());
    let mut out = Vec::new();
    render_selected(&lines, opts, &mut out);
    apply_limit(&mut out, opts.limit_bytes);
    Ok(out)
}

/// Follows a log as `kubectl logs -f` does: first what [`read_logs`] would answer
/// (without the byte limit's cut, which applies to the whole stream), then every new
/// line as it is written, through rotations, polling every [`FOLLOW_POLL`]. The stream
/// ends once `done()` has answered `true` (the container has exited) and the log has
/// been read to its end, or when `limit_bytes` have been sent.
pub fn follow_logs<D>(
    path: PathBuf,
    opts: LogOptions,
    done: D,
) -> impl Stream<Item = io::Result<Bytes>> + Send
where
    D: Fn() -> bool + Send + Sync + 'static,
{
    let follower = Follower {
        path,
        opts,
        done: Box::new(done),
        file: None,
        ino: None,
        buf: Vec::new(),
        asm: Assembler::default(),
        sent: 0,
        started: false,
        finished: false,
    };
    futures::stream::unfold(follower, |mut f| async move {
        loop {
            if f.finished {
                return None;
            }
            match f.poll_once() {
                Ok(chunk) if !chunk.is_empty() => return Some((Ok(Bytes::from(chunk)), f)),
                Ok(_) if f.finished => return None,
                Ok(_) => tokio::time::sleep(FOLLOW_POLL).await,
                Err(e) => {
                    f.finished = true;
                    return Some((Err(e), f));
                }
            }
        }
    })
}

struct Follower {
    path: PathBuf,
    opts: LogOptions,
    done: Box<dyn Fn() -> bool + Send + Sync>,
    /// The file being read (the live one, or the one it was rotated to and not yet
    /// drained), with its inode.
    file: Option<File>,
    ino: Option<u64>,
    /// Bytes read after the last newline.
    buf: Vec<u8>,
    asm: Assembler,
    sent: u64,
    started: bool,
    finished: bool,
}

impl Follower {
    /// Reads what is new; answers the rendered output (possibly empty).
    fn poll_once(&mut self) -> io::Result<Vec<u8>> {
        // Asked before reading, so that everything written before the container ended
        // is read in this round.
        let done = (self.done)();
        let mut lines = Vec::new();
        if !self.started {
            self.started = true;
            // The rotated files in full, then the live one through a handle kept open.
            let files = log_files(&self.path)?;
            for file in files.iter().filter(|f| **f != self.path) {
                if let Ok(mut b) = std::fs::read(file) {
                    if !b.ends_with(b"\n") && !b.is_empty() {
                        b.push(b'\n');
                    }
                    feed(&mut b, &mut self.asm, &mut lines);
                }
            }
            self.read_live(&mut lines)?;
            let mut out = Vec::new();
            render_selected(&lines, &self.opts, &mut out);
            if done {
                self.finish(&mut out);
            }
            return Ok(self.limit(out));
        }
        self.read_live(&mut lines)?;
        let mut out = Vec::new();
        for line in lines.iter().filter(|l| l.since_ok(self.opts.since)) {
            line.render(self.opts.timestamps, &mut out);
        }
        if done {
            self.finish(&mut out);
        }
        Ok(self.limit(out))
    }

    /// The container has ended: what is left unfinished is sent as it is.
    fn finish(&mut self, out: &mut Vec<u8>) {
        let mut rest = std::mem::take(&mut self.buf);
        if !rest.is_empty() {
            rest.push(b'\n');
            let mut lines = Vec::new();
            feed(&mut rest, &mut self.asm, &mut lines);
            for line in lines.iter().filter(|l| l.since_ok(self.opts.since)) {
                line.render(self.opts.timestamps, out);
            }
        }
        for line in self
            .asm
            .drain()
            .iter()
            .filter(|l| l.since_ok(self.opts.since))
        {
            line.render(self.opts.timestamps, out);
        }
        self.finished = true;
    }

    fn limit(&mut self, mut out: Vec<u8>) -> Vec<u8> {
        if let Some(limit) = self.opts.limit_bytes {
            let left = limit.saturating_sub(self.sent);
            if out.len() as u64 >= left {
                out.truncate(left as usize);
                self.finished = true;
            }
        }
        self.sent += out.len() as u64;
        out
    }

    /// Reads the live file to its end; when it was rotated (the path names another
    /// inode), drains the old one and moves to the new one.
    fn read_live(&mut self, lines: &mut Vec<Line>) -> io::Result<()> {
        loop {
            if let Some(file) = self.file.as_mut() {
                file.read_to_end(&mut self.buf)?;
                feed(&mut self.buf, &mut self.asm, lines);
            }
            let current = match std::fs::metadata(&self.path) {
                Ok(m) => m.ino(),
                // Between the rename and the new file, or not yet created.
                Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
                Err(e) => return Err(e),
            };
            if self.ino == Some(current) {
                return Ok(());
            }
            // A new live file: the old one (drained above) is finished; an unterminated
            // rest of it cannot continue in the new file.
            if !self.buf.is_empty() {
                self.buf.push(b'\n');
                feed(&mut self.buf, &mut self.asm, lines);
            }
            let mut file = match File::open(&self.path) {
                Ok(f) => f,
                Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
                Err(e) => return Err(e),
            };
            file.seek(SeekFrom::Start(0))?;
            self.ino = Some(file.metadata()?.ino());
            self.file = Some(file);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tmp(name: &str) -> PathBuf {
        let dir =
            std::env::temp_dir().join(format!("plimsoll-logfile-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    #[test]
    fn timestamps_format_and_parse() {
        let t = UNIX_EPOCH + Duration::new(1_796_530_233, 123_456_789);
        let s = format_timestamp(t);
        assert_eq!(s, "2026-12-06T04:10:33.123456789Z");
        assert_eq!(parse_timestamp(&s), Some(t));
        assert_eq!(
            format_timestamp(UNIX_EPOCH),
            "1970-01-01T00:00:00.000000000Z"
        );
        assert_eq!(
            format_timestamp(UNIX_EPOCH + Duration::from_secs(951_782_400)),
            "2000-02-29T00:00:00.000000000Z"
        );
    }

    #[test]
    fn writes_splits_and_reads_back() {
        let dir = tmp("split");
        let path = dir.join("0.log");
        let mut w = LogWriter::open(&path, 0, 5).unwrap();
        let t0 = UNIX_EPOCH + Duration::from_secs(1_800_000_000);
        w.write(LogStream::Stdout, t0, b"hello", false).unwrap();
        let long = vec![b'x'; MAX_ENTRY_BYTES * 2 + 10];
        w.write(LogStream::Stderr, t0 + Duration::from_secs(1), &long, false)
            .unwrap();
        w.write(
            LogStream::Stdout,
            t0 + Duration::from_secs(2),
            b"part",
            true,
        )
        .unwrap();
        w.write(
            LogStream::Stdout,
            t0 + Duration::from_secs(3),
            b"-rest",
            false,
        )
        .unwrap();
        w.write(LogStream::Stdout, t0 + Duration::from_secs(4), b"", false)
            .unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        let tags: Vec<&str> = text.lines().map(|l| l.split(' ').nth(2).unwrap()).collect();
        assert_eq!(tags, ["F", "P", "P", "F", "P", "F", "F"]);
        assert!(text.starts_with("2027-01-15T08:00:00.000000000Z stdout F hello\n"));

        let all = read_logs(&path, &LogOptions::default()).unwrap();
        let mut want = b"hello\n".to_vec();
        want.extend_from_slice(&long);
        want.extend_from_slice(b"\npart-rest\n\n");
        assert_eq!(all, want);

        let tail = read_logs(
            &path,
            &LogOptions {
                tail_lines: Some(2),
                timestamps: true,
                ..Default::default()
            },
        )
        .unwrap();
        assert_eq!(
            String::from_utf8(tail).unwrap(),
            "2027-01-15T08:00:02.000000000Z part-rest\n2027-01-15T08:00:04.000000000Z \n"
        );
        let since = read_logs(
            &path,
            &LogOptions {
                since: Some(t0 + Duration::from_secs(2)),
                ..Default::default()
            },
        )
        .unwrap();
        assert_eq!(since, b"part-rest\n\n");
        let limited = read_logs(
            &path,
            &LogOptions {
                limit_bytes: Some(3),
                ..Default::default()
            },
        )
        .unwrap();
        assert_eq!(limited, b"hel");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn rotates_keeping_max_files() {
        let dir = tmp("rotate");
        let path = dir.join("0.log");
        let mut w = LogWriter::open(&path, 200, 3).unwrap();
        for i in 0..40 {
            w.write(
                LogStream::Stdout,
                SystemTime::now(),
                format!("line {i:02}").as_bytes(),
                false,
            )
            .unwrap();
        }
        let files = log_files(&path).unwrap();
        assert_eq!(
            files,
            vec![numbered(&path, 2), numbered(&path, 1), path.clone()]
        );
        for f in &files {
            assert!(std::fs::metadata(f).unwrap().len() <= 200);
        }
        assert!(!numbered(&path, 3).exists());
        let text = String::from_utf8(read_logs(&path, &LogOptions::default()).unwrap()).unwrap();
        let nums: Vec<u32> = text.lines().map(|l| l[5..].parse().unwrap()).collect();
        // The newest lines, in order, without gaps, ending at the last.
        assert_eq!(*nums.last().unwrap(), 39);
        assert!(nums.windows(2).all(|w| w[1] == w[0] + 1), "{nums:?}");
        assert!(nums.len() >= 6 && nums.len() < 40, "{nums:?}");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[tokio::test]
    async fn follows_through_rotation_until_done() {
        use futures::StreamExt;
        use std::sync::atomic::{AtomicBool, Ordering};
        use std::sync::Arc;
        let dir = tmp("follow");
        let path = dir.join("0.log");
        let mut w = LogWriter::open(&path, 600, 2).unwrap();
        w.write(LogStream::Stdout, SystemTime::now(), b"first", false)
            .unwrap();
        let ended = Arc::new(AtomicBool::new(false));
        let flag = ended.clone();
        let stream = follow_logs(path.clone(), LogOptions::default(), move || {
            flag.load(Ordering::SeqCst)
        });
        let writer = tokio::task::spawn_blocking(move || {
            for i in 0..30 {
                w.write(
                    LogStream::Stdout,
                    SystemTime::now(),
                    format!("n{i}").as_bytes(),
                    false,
                )
                .unwrap();
                if i % 10 == 0 {
                    std::thread::sleep(Duration::from_millis(250));
                }
            }
            w.write(LogStream::Stderr, SystemTime::now(), b"unfinished", true)
                .unwrap();
            ended.store(true, Ordering::SeqCst);
        });
        let chunks: Vec<Bytes> = tokio::time::timeout(
            Duration::from_secs(10),
            stream.map(|c| c.unwrap()).collect(),
        )
        .await
        .unwrap();
        writer.await.unwrap();
        let text: Vec<u8> = chunks.concat();
        let text = String::from_utf8(text).unwrap();
        let mut want = String::from("first\n");
        for i in 0..30 {
            want.push_str(&format!("n{i}\n"));
        }
        want.push_str("unfinished");
        assert_eq!(text, want);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
