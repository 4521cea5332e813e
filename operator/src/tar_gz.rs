//! The bundle's tar.gz, written to a spool file on disk, so memory stays bounded however large
//! the logs are; its sha256 is read from the file ([`sha256_of_file`]) beside the upload.
//!
//! Entry names are made of names from the cluster (objects, pods, containers, nodes, a
//! Restore's namespaceMapping), which anyone able to create such an object chooses. So an entry
//! is named only by an [`EntryPath`], built from sanitized components, and the writer gives
//! every entry a name of its own: extracting a bundle writes inside its root folder only and
//! never overwrites one of its files with another.
//!
//! summary.md and manifest.json are the archive's first entries, so a reader that wants only
//! them (the kubectl plugin's `summary`) stops at the start of the download. They are written
//! last, though (the manifest lists every file), so the entries collected are streamed to a body
//! file first, and the archive is made at the end of two gzip members: the first entries, then
//! the body's bytes as they are. A concatenation of gzip members is one gzip stream (RFC 1952)
//! that `tar -xzf`, Go, Python and flate2's `MultiGzDecoder` read as one tar; a reader made
//! with flate2's `GzDecoder` stops after the first member.

use std::{
    collections::{HashMap, HashSet},
    ffi::OsString,
    fmt,
    fs::File,
    io::{self, BufReader, BufWriter, Read, Write},
    path::{Path, PathBuf},
};

use flate2::write::GzEncoder;
use sha2::{Digest, Sha256};

use crate::{
    gzip_members::{CompressedFile, Compression},
    summary::ArchivedFile,
};

/// Most bytes of one component (the root folder, a folder, a file name): what a plain tar
/// header holds, and far below any file system's limit.
const MAX_COMPONENT_BYTES: usize = 100;
/// Folders an entry may sit in below the root; deeper ones are folded into the last.
const MAX_FOLDERS: usize = 4;
/// Bytes of an extension (without its dot) kept.
const MAX_EXTENSION_BYTES: usize = 16;
/// Every entry's full name (root folder, folders, file name, slashes) fits in this.
const MAX_ENTRY_NAME_BYTES: usize = (MAX_FOLDERS + 2) * (MAX_COMPONENT_BYTES + 1);
/// Hex digits of the sha256 that stand for the cut-off end of a long name.
const HASH_HEX_DIGITS: usize = 8;
/// The tar end-of-archive marker: two zero blocks, ending the body only.
const TAR_END_BYTES: usize = 1024;
/// Buffer of the spool files written and of the body copied, so memory stays bounded.
const FILE_BUFFER_BYTES: usize = 256 * 1024;

/// `raw` as one safe component of at most `max` bytes:
/// - only ASCII letters, digits, `.`, `_` and `-` are kept; anything else (`/`, `\`, NUL,
///   control characters, spaces, any non-ASCII character) becomes `_`;
/// - a leading `.` or `-` becomes `_`: no `.` or `..`, no hidden file, nothing a shell tool
///   takes for an option; so does a trailing `.`, which Windows drops;
/// - empty becomes `_`;
/// - longer than `max`: a readable prefix, `-` and the first hex digits of the sha256 of all of
///   `raw`, so names that differ only past the cut stay distinct.
///
/// Kubernetes names (DNS labels and subdomains up to `max` bytes) come out unchanged.
fn sanitize(raw: &str, max: usize) -> String {
    // Each char becomes one byte, so more than max + 1 chars are never needed.
    let mut name: String = raw
        .chars()
        .take(max + 1)
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-') {
                c
            } else {
                '_'
            }
        })
        .collect();
    if name.len() > max {
        name.truncate(max - HASH_HEX_DIGITS - 1);
        name.push('-');
        name.push_str(&hex::encode(Sha256::digest(raw.as_bytes()))[..HASH_HEX_DIGITS]);
    }
    if name.is_empty() {
        name.push('_');
    }
    if name.starts_with(['.', '-']) {
        name.replace_range(..1, "_");
    }
    if name.ends_with('.') {
        name.pop();
        name.push('_');
    }
    name
}

/// A folder of an entry's path: its safe name, and a fingerprint of the name it was made
/// from, so folders of different names never merge even when their safe names are equal.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct Folder {
    name: String,
    origin: [u8; 16],
}

impl Folder {
    fn new(raw: &str) -> Self {
        let digest = Sha256::digest(raw.as_bytes());
        let mut origin = [0; 16];
        origin.copy_from_slice(&digest[..16]);
        Self {
            name: sanitize(raw, MAX_COMPONENT_BYTES),
            origin,
        }
    }
}

/// Where a file goes in the bundle, below its root folder: folders and a file name, each
/// sanitized (see [`sanitize`]). The only name [`TarGzWriter`] takes, so no name from the
/// cluster can reach the archive unsanitized.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct EntryPath {
    folders: Vec<Folder>,
    stem: String,
    /// Without its dot; empty for none.
    extension: String,
}

impl EntryPath {
    /// The file `stem.extension` in `folders` (outermost first). Folders beyond
    /// [`MAX_FOLDERS`] are folded into the last one; the extension keeps only ASCII letters and
    /// digits (it is always the code's own: `yaml`, `log`).
    pub fn new(folders: &[&str], stem: &str, extension: &str) -> Self {
        let folders = if folders.len() > MAX_FOLDERS {
            let (kept, deeper) = folders.split_at(MAX_FOLDERS - 1);
            kept.iter()
                .map(|f| Folder::new(f))
                .chain(std::iter::once(Folder::new(&deeper.join("/"))))
                .collect()
        } else {
            folders.iter().map(|f| Folder::new(f)).collect()
        };
        let extension: String = extension
            .chars()
            .filter(char::is_ascii_alphanumeric)
            .take(MAX_EXTENSION_BYTES)
            .collect();
        let stem = sanitize(stem, stem_max(&extension));
        Self {
            folders,
            stem,
            extension,
        }
    }
}

/// The path as asked for; the archive may give it a suffix (see [`TarGzWriter::append_reader`]).
impl fmt::Display for EntryPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for folder in &self.folders {
            write!(f, "{}/", folder.name)?;
        }
        f.write_str(&file_name(&self.stem, &self.extension))
    }
}

/// Most bytes of a file name's stem, so that the whole name fits in a component.
fn stem_max(extension: &str) -> usize {
    if extension.is_empty() {
        MAX_COMPONENT_BYTES
    } else {
        MAX_COMPONENT_BYTES - 1 - extension.len()
    }
}

fn file_name(stem: &str, extension: &str) -> String {
    if extension.is_empty() {
        stem.to_string()
    } else {
        format!("{stem}.{extension}")
    }
}

fn join(parent: &str, name: &str) -> String {
    if parent.is_empty() {
        name.to_string()
    } else {
        format!("{parent}/{name}")
    }
}

/// The names given in one archive, so each entry gets one of its own.
#[derive(Default)]
struct EntryNames {
    /// Every path given (files and folders), lowercased: names that differ only in case
    /// overwrite each other on case-insensitive file systems (macOS, Windows).
    taken: HashSet<String>,
    /// The path given to each folder, by its parent's path and its origin.
    folders: HashMap<(String, [u8; 16]), String>,
    /// The next suffix to try for a name asked for more than once, by `parent/stem/extension`
    /// (lowercased), so many equal names do not retry every suffix.
    next_suffix: HashMap<String, u32>,
}

impl EntryNames {
    /// The path below the root that `entry` gets: the one asked for, unless taken.
    fn claim(&mut self, entry: &EntryPath) -> String {
        let mut parent = String::new();
        for folder in &entry.folders {
            let key = (std::mem::take(&mut parent), folder.origin);
            parent = match self.folders.get(&key) {
                Some(path) => path.clone(),
                None => {
                    let path = self.first_free(&key.0, &folder.name, "");
                    self.folders.insert(key, path.clone());
                    path
                }
            };
        }
        self.first_free(&parent, &entry.stem, &entry.extension)
    }

    /// The first of `stem.ext`, `stem-2.ext`, `stem-3.ext`... in `parent` not taken by a file
    /// or folder, taken now. The stem is cut to keep the name within a component.
    fn first_free(&mut self, parent: &str, stem: &str, extension: &str) -> String {
        let asked = join(parent, &file_name(stem, extension));
        // Not `asked`: file `a.b` and folder `a.b` take their suffixes in different places.
        let asked_key = format!("{}/{extension}", join(parent, stem)).to_lowercase();
        let mut n = self.next_suffix.get(&asked_key).copied().unwrap_or(1);
        loop {
            let candidate = if n == 1 {
                asked.clone()
            } else {
                let suffix = format!("-{n}");
                // Sanitized names are ASCII: every byte is a char boundary.
                let keep = stem.len().min(stem_max(extension) - suffix.len());
                join(
                    parent,
                    &file_name(&format!("{}{suffix}", &stem[..keep]), extension),
                )
            };
            n += 1;
            if self.taken.insert(candidate.to_lowercase()) {
                if n > 2 {
                    self.next_suffix.insert(asked_key, n);
                }
                return candidate;
            }
        }
    }
}

/// Counts what passes through to the file.
struct CountingWriter<W> {
    inner: W,
    written: u64,
}

impl<W: Write> Write for CountingWriter<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.written += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

/// The hex sha256 of a file, read a buffer at a time. A whole archive passes here at the end of
/// a bundle: aws-lc's SHA-256 (assembly with AVX2) reads it at 1.6x the speed of the sha2
/// crate's portable code on CPUs without SHA extensions (BENCHMARKS.md, 2026-11-27 early).
pub(crate) fn sha256_of_file(path: &Path) -> io::Result<String> {
    let mut file = File::open(path)?;
    let mut hasher = aws_lc_rs::digest::Context::new(&aws_lc_rs::digest::SHA256);
    let mut buffer = vec![0u8; FILE_BUFFER_BYTES];
    loop {
        match file.read(&mut buffer) {
            Ok(0) => break,
            Ok(n) => hasher.update(&buffer[..n]),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(hex::encode(hasher.finish()))
}

/// The finished archive on disk.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct FinishedArchive {
    pub path: PathBuf,
    pub size: u64,
    pub file_count: i32,
}

/// The body file: what the tar writer writes goes through gzip, one member at a time, and
/// content compressed ahead (see [`gzip_members`](crate::gzip_members)) is copied in between
/// members as it is. Generic over the file only so a test can make the disk fill up.
struct MemberWriter<W: Write = BufWriter<File>> {
    /// The member being written; None between members.
    member: Option<GzEncoder<W>>,
    /// The file, while no member is being written.
    file: Option<W>,
    compression: Compression,
}

/// The writer holds neither a member nor its file: only once finished, which no write follows.
fn no_file() -> io::Error {
    io::Error::other("the body file is closed")
}

impl<W: Write> MemberWriter<W> {
    /// Ends the member being written. A member that cannot be finished (the disk is full) is
    /// kept, so the writer always holds its file: the tar writer's drop writes its end marker
    /// and must meet an error then, not a writer without a file.
    fn file(&mut self) -> io::Result<&mut W> {
        if let Some(mut member) = self.member.take() {
            if let Err(e) = member.try_finish() {
                self.member = Some(member);
                return Err(e);
            }
            // Finished already: this only hands the file back.
            self.file = Some(member.finish()?);
        }
        self.file.as_mut().ok_or_else(no_file)
    }

    /// Ends the member being written and copies `members` in as they are.
    fn splice(&mut self, members: &[PathBuf]) -> io::Result<()> {
        let file = self.file()?;
        for member in members {
            let mut source = BufReader::with_capacity(FILE_BUFFER_BYTES, File::open(member)?);
            io::copy(&mut source, file)?;
        }
        Ok(())
    }

    fn finish(mut self) -> io::Result<W> {
        self.file()?;
        self.file.take().ok_or_else(no_file)
    }
}

impl<W: Write> Write for MemberWriter<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let member = match &mut self.member {
            Some(member) => member,
            None => {
                let file = self.file.take().ok_or_else(no_file)?;
                self.member
                    .insert(GzEncoder::new(file, self.compression.flate2()))
            }
        };
        member.write(buf)
    }

    fn flush(&mut self) -> io::Result<()> {
        match (&mut self.member, &mut self.file) {
            (Some(member), _) => member.flush(),
            (None, Some(file)) => file.flush(),
            (None, None) => Ok(()),
        }
    }
}

pub(crate) struct TarGzWriter {
    /// The entries appended, streamed to `body_path` as they come.
    body: tar::Builder<MemberWriter>,
    body_path: PathBuf,
    /// The finished archive: the first entries, then the body.
    path: PathBuf,
    /// Every entry sits under this folder, so extracting a bundle makes one directory.
    root: String,
    files: Vec<ArchivedFile>,
    /// The entries that go first, by full name, kept in memory until the archive is finished.
    first: Vec<(String, Vec<u8>)>,
    names: EntryNames,
    mtime: u64,
    compression: Compression,
}

impl TarGzWriter {
    /// `root` (the bundle's name) is sanitized like any component. `mtime` (seconds since the
    /// epoch) is stamped on every entry, so the same content makes the same archive. Until
    /// [`finish`](Self::finish), entries go to a body file next to `path`.
    pub fn create(
        path: &Path,
        root: &str,
        mtime: u64,
        compression: Compression,
    ) -> io::Result<Self> {
        let mut body_path = OsString::from(path);
        body_path.push(".body");
        let body_path = PathBuf::from(body_path);
        let file = BufWriter::with_capacity(FILE_BUFFER_BYTES, File::create(&body_path)?);
        let mut body = tar::Builder::new(MemberWriter {
            member: None,
            file: Some(file),
            compression,
        });
        body.mode(tar::HeaderMode::Deterministic);
        Ok(Self {
            body,
            body_path,
            path: path.to_path_buf(),
            root: sanitize(root, MAX_COMPONENT_BYTES),
            files: Vec::new(),
            first: Vec::new(),
            names: EntryNames::default(),
            mtime,
            compression,
        })
    }

    /// The folder every entry sits in.
    pub fn root(&self) -> &str {
        &self.root
    }

    fn header(&self, size: u64) -> tar::Header {
        let mut header = tar::Header::new_gnu();
        header.set_size(size);
        header.set_mode(0o644);
        header.set_mtime(self.mtime);
        header.set_entry_type(tar::EntryType::Regular);
        header
    }

    /// The full name `entry` gets: `entry` as asked, or, when an earlier entry or folder has
    /// that name (ignoring case), with a suffix `-2`, `-3`... before the extension.
    fn claim(&mut self, entry: &EntryPath) -> (String, String) {
        let name = self.names.claim(entry);
        let full = format!("{}/{name}", self.root);
        debug_assert!(full.len() <= MAX_ENTRY_NAME_BYTES, "{full}");
        (name, full)
    }

    /// Appends `size` bytes read from `data` as `entry`, and returns its name below the root
    /// (see [`claim`](Self::claim)).
    pub fn append_reader(
        &mut self,
        entry: &EntryPath,
        size: u64,
        data: impl Read,
    ) -> io::Result<String> {
        let mut header = self.header(size);
        let (name, full) = self.claim(entry);
        self.body.append_data(&mut header, &full, data)?;
        self.files.push(ArchivedFile {
            path: name.clone(),
            size,
        });
        Ok(name)
    }

    pub fn append_bytes(&mut self, entry: &EntryPath, data: &[u8]) -> io::Result<String> {
        self.append_reader(entry, data.len() as u64, data)
    }

    /// Appends a spooled file, whose size is known once it is written.
    pub fn append_file(&mut self, entry: &EntryPath, file: &Path) -> io::Result<String> {
        let f = File::open(file)?;
        let size = f.metadata()?.len();
        self.append_reader(entry, size, f)
    }

    /// Appends a file compressed ahead (see [`gzip_members`](crate::gzip_members)): its tar
    /// header goes through the body's gzip, its members are copied in as they are and then
    /// removed.
    pub fn append_compressed(
        &mut self,
        entry: &EntryPath,
        content: &CompressedFile,
    ) -> io::Result<String> {
        let mut header = self.header(content.size);
        let (name, full) = self.claim(entry);
        // With no data, the tar writer writes the header (and a long name's entries) and no
        // padding: the members hold the content and its padding.
        self.body.append_data(&mut header, &full, io::empty())?;
        let spliced = self.body.get_mut().splice(&content.members);
        content.remove();
        spliced?;
        self.files.push(ArchivedFile {
            path: name.clone(),
            size: content.size,
        });
        Ok(name)
    }

    /// Puts `data` as `entry` ahead of every entry appended, after those put first before it,
    /// and returns its name below the root (see [`claim`](Self::claim)).
    pub fn put_first(&mut self, entry: &EntryPath, data: Vec<u8>) -> String {
        let (name, full) = self.claim(entry);
        self.files.insert(
            self.first.len(),
            ArchivedFile {
                path: name.clone(),
                size: data.len() as u64,
            },
        );
        self.first.push((full, data));
        name
    }

    /// The files so far, by their final names, in the archive's order.
    pub fn files(&self) -> &[ArchivedFile] {
        &self.files
    }

    /// Closes the body, writes the archive (the entries put first, then the body, copied
    /// through a fixed buffer: the spool holds both for a moment) and removes the body.
    pub fn finish(self) -> io::Result<FinishedArchive> {
        let file_count = self.files.len() as i32;
        let first = self.first_member()?;
        let mut body = self.body.into_inner()?.finish()?;
        body.flush()?;
        drop(body);

        let file = BufWriter::with_capacity(FILE_BUFFER_BYTES, File::create(&self.path)?);
        let mut archive = CountingWriter {
            inner: file,
            written: 0,
        };
        archive.write_all(&first)?;
        let body = File::open(&self.body_path)?;
        io::copy(
            &mut BufReader::with_capacity(FILE_BUFFER_BYTES, body),
            &mut archive,
        )?;
        archive.flush()?;
        std::fs::remove_file(&self.body_path)?;
        Ok(FinishedArchive {
            path: self.path,
            size: archive.written,
            file_count,
        })
    }

    /// The gzip member of the entries put first, without the tar end-of-archive marker (the
    /// body's ends the archive); empty when there are none.
    fn first_member(&self) -> io::Result<Vec<u8>> {
        if self.first.is_empty() {
            return Ok(Vec::new());
        }
        let mut tar = tar::Builder::new(Vec::new());
        for (full, data) in &self.first {
            let mut header = self.header(data.len() as u64);
            tar.append_data(&mut header, full, data.as_slice())?;
        }
        let tar = tar.into_inner()?;
        let entries = tar
            .strip_suffix(&[0; TAR_END_BYTES])
            .ok_or_else(|| io::Error::other("tar ended without its end-of-archive marker"))?;
        let mut gz = GzEncoder::new(Vec::new(), self.compression.flate2());
        gz.write_all(entries)?;
        gz.finish()
    }
}

#[cfg(test)]
#[path = "tar_gz_tests.rs"]
mod tests;
