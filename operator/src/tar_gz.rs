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
mod tests {
    use super::*;
    use flate2::read::{GzDecoder, MultiGzDecoder};

    /// Every entry of a tar.gz, all its gzip members read: its full name and content.
    fn entries(archive: &Path) -> Vec<(String, Vec<u8>)> {
        let bytes = std::fs::read(archive).unwrap();
        tar_entries(MultiGzDecoder::new(bytes.as_slice()))
    }

    /// Every entry of a tar up to its end-of-archive marker, or its end.
    fn tar_entries(tar: impl Read) -> Vec<(String, Vec<u8>)> {
        let mut archive = tar::Archive::new(tar);
        archive
            .entries()
            .unwrap()
            .map(|entry| {
                let mut entry = entry.unwrap();
                assert!(entry.header().entry_type().is_file());
                let name = String::from_utf8(entry.path_bytes().into_owned()).unwrap();
                let mut content = Vec::new();
                entry.read_to_end(&mut content).unwrap();
                (name, content)
            })
            .collect()
    }

    /// What a safe component is: bounded, only safe characters, nothing a path resolver or a
    /// shell takes for something else.
    fn assert_safe_component(c: &str) {
        assert!(!c.is_empty() && c.len() <= MAX_COMPONENT_BYTES, "{c:?}");
        assert!(
            c.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b)),
            "{c:?}"
        );
        assert!(!c.starts_with(['.', '-']) && !c.ends_with('.'), "{c:?}");
    }

    const TEN_KB: usize = 10 * 1024;

    fn hostile_names() -> Vec<String> {
        [
            "../../etc/passwd",
            "/abs",
            "a/b",
            "a\\b",
            "..",
            ".",
            "",
            "-rf",
            ".hidden",
            "trailing.",
            "nul\0byte",
            "bell\x07esc\x1b[31mnewline\n",
            "\u{FFFD}\u{FFFD}",
            "ünïcødé",
            "C:\\Windows",
            "with space",
        ]
        .into_iter()
        .map(str::to_string)
        .chain([
            "x".repeat(TEN_KB),
            "\u{FFFD}".repeat(TEN_KB),
            "../".repeat(TEN_KB / 3),
        ])
        .collect()
    }

    #[test]
    fn hostile_names_become_safe_components() {
        for raw in hostile_names() {
            assert_safe_component(&sanitize(&raw, MAX_COMPONENT_BYTES));
        }
        let cases = [
            ("../../etc/passwd", "_._.._etc_passwd"),
            ("/abs", "_abs"),
            ("a/b", "a_b"),
            ("a\\b", "a_b"),
            ("..", "__"),
            (".", "_"),
            ("", "_"),
            ("-rf", "_rf"),
            ("nul\0byte", "nul_byte"),
            ("esc\x1b[31m\n", "esc__31m_"),
            ("\u{FFFD}x", "_x"),
        ];
        for (raw, safe) in cases {
            assert_eq!(sanitize(raw, MAX_COMPONENT_BYTES), safe, "{raw:?}");
        }
    }

    #[test]
    fn kubernetes_names_are_kept() {
        let longest = "a".repeat(MAX_COMPONENT_BYTES);
        for name in [
            "velero-7d9f8c6b5-x2x4z",
            "ip-10-0-1-23.eu-west-1.compute.internal",
            "node-agent",
            longest.as_str(),
        ] {
            assert_eq!(sanitize(name, MAX_COMPONENT_BYTES), name);
        }
    }

    #[test]
    fn long_names_keep_a_prefix_and_stay_distinct() {
        let one = format!("{}1", "p".repeat(TEN_KB));
        let two = format!("{}2", "p".repeat(TEN_KB));
        let (a, b) = (
            sanitize(&one, MAX_COMPONENT_BYTES),
            sanitize(&two, MAX_COMPONENT_BYTES),
        );
        assert_eq!(a.len(), MAX_COMPONENT_BYTES);
        assert!(a.starts_with(&"p".repeat(80)));
        assert_ne!(a, b);
        // One past the limit is cut too.
        let just_over = "q".repeat(MAX_COMPONENT_BYTES + 1);
        assert_eq!(
            sanitize(&just_over, MAX_COMPONENT_BYTES).len(),
            MAX_COMPONENT_BYTES
        );
    }

    #[test]
    fn entry_paths_are_built_of_safe_components_within_bounds() {
        let path = EntryPath::new(&["logs", "../..", "a/b"], "../../etc/passwd", "log");
        assert_eq!(path.to_string(), "logs/_._._/a_b/_._.._etc_passwd.log");
        let long = "z".repeat(TEN_KB);
        let deep = EntryPath::new(&[long.as_str(); 7], &long, "yaml");
        let shown = deep.to_string();
        assert_eq!(shown.split('/').count(), MAX_FOLDERS + 1);
        shown.split('/').for_each(assert_safe_component);
        assert!(shown.ends_with(".yaml"));
        // The extension is the code's own, but cannot smuggle a separator either.
        assert_eq!(EntryPath::new(&[], "f", "../x").to_string(), "f.x");
    }

    #[test]
    fn equal_names_get_suffixes_and_distinct_folders_stay_apart() {
        let mut names = EntryNames::default();
        let mut claim =
            |folders: &[&str], stem: &str| names.claim(&EntryPath::new(folders, stem, "yaml"));
        assert_eq!(claim(&["pods"], "a/b"), "pods/a_b.yaml");
        assert_eq!(claim(&["pods"], "a\\b"), "pods/a_b-2.yaml");
        assert_eq!(claim(&["pods"], "a_b"), "pods/a_b-3.yaml");
        // Case-insensitive file systems would merge these.
        assert_eq!(claim(&["pods"], "A_B"), "pods/A_B-4.yaml");
        // The same folder name again is the same folder; another name that sanitizes to it is
        // another folder.
        assert_eq!(claim(&["logs", "a/b"], "c"), "logs/a_b/c.yaml");
        assert_eq!(claim(&["logs", "a/b"], "d"), "logs/a_b/d.yaml");
        assert_eq!(claim(&["logs", "a\\b"], "c"), "logs/a_b-2/c.yaml");
        // A file never takes a folder's name, nor a folder a file's.
        assert_eq!(names.claim(&EntryPath::new(&[], "logs", "")), "logs-2");
        assert_eq!(
            names.claim(&EntryPath::new(&["pods", "a_b.yaml"], "x", "")),
            "pods/a_b.yaml-2/x"
        );
    }

    #[test]
    fn suffixes_keep_long_names_within_a_component() {
        let mut names = EntryNames::default();
        let long = "l".repeat(TEN_KB);
        let mut seen = HashSet::new();
        for _ in 0..1000 {
            let name = names.claim(&EntryPath::new(&[long.as_str()], &long, "log"));
            name.split('/').for_each(assert_safe_component);
            assert!(name.ends_with(".log"));
            assert!(seen.insert(name));
        }
    }

    #[test]
    fn hostile_entries_stay_inside_the_root_and_never_overwrite_each_other() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("b.tar.gz");
        let mut w =
            TarGzWriter::create(&path, "../../bundle\0", 42, Compression::default()).unwrap();
        let mut written = Vec::new();
        for (i, raw) in hostile_names().iter().map(String::as_str).enumerate() {
            // Every hostile name as a folder and as a file, twice: equal safe names collide.
            for _ in 0..2 {
                let content = format!("content {}", written.len());
                let entry = EntryPath::new(&["logs", raw, raw], raw, "log");
                let name = w.append_bytes(&entry, content.as_bytes()).unwrap();
                written.push((name, content));
            }
            let entry = EntryPath::new(&[raw], &format!("{raw}{i}"), "yaml");
            let name = w.append_bytes(&entry, b"yaml").unwrap();
            written.push((name, "yaml".to_string()));
        }
        let listed: Vec<String> = w.files().iter().map(|f| f.path.clone()).collect();
        let root = w.root().to_string();
        assert_eq!(root, "_._.._bundle_");
        w.finish().unwrap();

        let read = entries(&path);
        assert_eq!(read.len(), written.len());
        let mut unique = HashSet::new();
        for ((full, content), (name, expected)) in read.iter().zip(&written) {
            assert!(full.len() <= MAX_ENTRY_NAME_BYTES, "{full}");
            let components: Vec<&str> = full.split('/').collect();
            assert_eq!(components[0], root);
            components.iter().for_each(|c| assert_safe_component(c));
            assert_eq!(full, &format!("{root}/{name}"));
            assert_eq!(String::from_utf8_lossy(content), *expected);
            assert!(unique.insert(full.to_lowercase()), "{full} twice");
        }
        let names: Vec<&String> = written.iter().map(|(name, _)| name).collect();
        assert_eq!(listed.iter().collect::<Vec<_>>(), names);
    }

    #[test]
    fn archive_holds_entries_under_root_and_hash_matches_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("b.tar.gz");
        let mut w =
            TarGzWriter::create(&path, "bundle-x", 1_700_000_000, Compression::default()).unwrap();
        w.append_bytes(&EntryPath::new(&["a"], "one", "txt"), b"hello")
            .unwrap();
        let spooled = dir.path().join("spool");
        std::fs::write(&spooled, vec![b'x'; 100_000]).unwrap();
        w.append_file(&EntryPath::new(&["logs"], "big", "log"), &spooled)
            .unwrap();
        let done = w.finish().unwrap();

        let bytes = std::fs::read(&path).unwrap();
        assert_eq!(done.size, bytes.len() as u64);
        assert_eq!(
            sha256_of_file(&done.path).unwrap(),
            hex::encode(Sha256::digest(&bytes))
        );
        assert_eq!(done.file_count, 2);

        let seen: Vec<(String, usize)> = entries(&path)
            .into_iter()
            .map(|(name, content)| (name, content.len()))
            .collect();
        assert_eq!(
            seen,
            [
                ("bundle-x/a/one.txt".to_string(), 5),
                ("bundle-x/logs/big.log".to_string(), 100_000)
            ]
        );
    }

    #[test]
    fn content_compressed_ahead_sits_between_entries_as_any_other() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("b.tar.gz");
        let mut w =
            TarGzWriter::create(&path, "bundle-x", 1_700_000_000, Compression::default()).unwrap();
        w.append_bytes(&EntryPath::new(&["a"], "one", "txt"), b"hello")
            .unwrap();
        // A name over the plain tar header's 100 bytes (a long-name entry before it) and content
        // that is not a whole number of blocks, in two members.
        let long = "p".repeat(90);
        let data: Vec<u8> = (0..(17u32 << 20) + 5).map(|i| (i % 253) as u8).collect();
        let spooled = dir.path().join("spool");
        std::fs::write(&spooled, &data).unwrap();
        let compressed = crate::gzip_members::compress_file(
            &spooled,
            Compression {
                level: 1,
                threads: 2,
            },
        )
        .unwrap();
        assert_eq!(compressed.members.len(), 2);
        let name = w
            .append_compressed(&EntryPath::new(&["logs", &long], "c", "log"), &compressed)
            .unwrap();
        assert!(compressed.members.iter().all(|m| !m.exists()));
        w.append_bytes(&EntryPath::new(&["z"], "last", "txt"), b"end")
            .unwrap();
        w.put_first(&EntryPath::new(&[], "summary", "md"), b"# S".to_vec());
        let done = w.finish().unwrap();
        assert_eq!(done.file_count, 4);

        let seen = entries(&path);
        let names: Vec<&str> = seen.iter().map(|(n, _)| n.as_str()).collect();
        let full = format!("bundle-x/{name}");
        assert_eq!(
            names,
            [
                "bundle-x/summary.md",
                "bundle-x/a/one.txt",
                full.as_str(),
                "bundle-x/z/last.txt"
            ]
        );
        assert!(full.len() > 100);
        assert_eq!(seen[2].1, data);
        assert_eq!(seen[3].1, b"end");
    }

    #[test]
    fn entries_put_first_lead_the_archive_in_a_gzip_member_of_their_own() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("b.tar.gz");
        let mut w =
            TarGzWriter::create(&path, "bundle-x", 1_700_000_000, Compression::default()).unwrap();
        w.append_bytes(&EntryPath::new(&["pods"], "p", "yaml"), b"kind: Pod")
            .unwrap();
        w.append_bytes(&EntryPath::new(&["logs"], "l", "log"), &vec![b'l'; 100_000])
            .unwrap();
        let summary = w.put_first(&EntryPath::new(&[], "summary", "md"), b"# S\n".to_vec());
        let listed: Vec<String> = w.files().iter().map(|f| f.path.clone()).collect();
        w.put_first(&EntryPath::new(&[], "manifest", "json"), b"{}".to_vec());
        assert_eq!(summary, "summary.md");
        assert_eq!(listed, ["summary.md", "pods/p.yaml", "logs/l.log"]);
        let done = w.finish().unwrap();

        let bytes = std::fs::read(&path).unwrap();
        assert_eq!(done.size, bytes.len() as u64);
        assert_eq!(
            sha256_of_file(&done.path).unwrap(),
            hex::encode(Sha256::digest(&bytes))
        );
        assert_eq!(done.file_count, 4);
        // The body is gone: only the archive is left in the spool.
        let left: Vec<_> = std::fs::read_dir(dir.path()).unwrap().collect();
        assert_eq!(left.len(), 1);

        let names = |read: Vec<(String, Vec<u8>)>| -> Vec<String> {
            read.into_iter().map(|(name, _)| name).collect()
        };
        // All members read: one tar, every entry once, the first ones first.
        assert_eq!(
            names(entries(&path)),
            [
                "bundle-x/summary.md",
                "bundle-x/manifest.json",
                "bundle-x/pods/p.yaml",
                "bundle-x/logs/l.log"
            ]
        );
        // The end-of-archive marker ends the tar, and only there.
        let mut tar = Vec::new();
        MultiGzDecoder::new(bytes.as_slice())
            .read_to_end(&mut tar)
            .unwrap();
        assert_eq!(tar.len() % 512, 0);
        assert!(tar.ends_with(&[0; TAR_END_BYTES]));
        // The first member alone holds the first entries, and no end marker.
        let mut first = Vec::new();
        GzDecoder::new(bytes.as_slice())
            .read_to_end(&mut first)
            .unwrap();
        assert!(first.len() < tar.len());
        assert!(!first.ends_with(&[0; 512]));
        assert_eq!(
            names(tar_entries(first.as_slice())),
            ["bundle-x/summary.md", "bundle-x/manifest.json"]
        );
    }

    /// A file on a disk with `room` bytes free: writes past it fail ENOSPC.
    struct FillingDisk {
        room: usize,
        written: usize,
    }

    impl Write for FillingDisk {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            if self.written + buf.len() > self.room {
                return Err(io::ErrorKind::StorageFull.into());
            }
            self.written += buf.len();
            Ok(buf.len())
        }

        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    /// An entry and then content compressed ahead, appended on a disk filling up at every
    /// point of the way: the disk's error every time, and the tar writer's drop (which writes
    /// its end marker) meets an error too, never a writer that lost its file to a member that
    /// could not be finished.
    #[test]
    fn a_disk_filling_up_at_any_point_is_an_error_not_a_panic() {
        let dir = tempfile::tempdir().unwrap();
        let compressed = dir.path().join("ahead.gz");
        std::fs::write(&compressed, vec![7u8; 4096]).unwrap();
        let noise = crate::test_support::noise(100_000, 0x2545_f491_4f6c_dd1d);
        let append = |room: usize| -> (io::Result<()>, io::Result<()>) {
            let mut body = tar::Builder::new(MemberWriter {
                member: None,
                file: Some(FillingDisk { room, written: 0 }),
                compression: Compression::default(),
            });
            let mut header = tar::Header::new_gnu();
            header.set_size(noise.len() as u64);
            let appended = body.append_data(&mut header, "r/noise", noise.as_slice());
            let spliced = match appended {
                Ok(()) => body.get_mut().splice(std::slice::from_ref(&compressed)),
                Err(_) => Ok(()),
            };
            drop(body);
            (appended, spliced)
        };
        let (Ok(()), Ok(())) = append(usize::MAX) else {
            panic!("no room needed")
        };
        let mut member_unfinished = 0;
        for room in (0..110_000).step_by(512) {
            let (appended, spliced) = append(room);
            if let Err(e) = appended.and(spliced.inspect_err(|_| member_unfinished += 1)) {
                assert_eq!(e.kind(), io::ErrorKind::StorageFull, "room {room}: {e}");
            }
        }
        // The case that once panicked: the member's last bytes do not fit.
        assert!(member_unfinished > 0);
    }

    #[test]
    fn a_files_sha256_spans_its_buffers_and_an_empty_file_has_the_empty_digest() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f");
        // Two buffers and a part of a third, not a pattern a buffer boundary could hide.
        let bytes: Vec<u8> = (0..2 * FILE_BUFFER_BYTES as u32 + 12_345)
            .map(|i| (i.wrapping_mul(2_654_435_761) >> 24) as u8)
            .collect();
        std::fs::write(&path, &bytes).unwrap();
        assert_eq!(
            sha256_of_file(&path).unwrap(),
            hex::encode(Sha256::digest(&bytes))
        );
        std::fs::write(&path, b"").unwrap();
        assert_eq!(
            sha256_of_file(&path).unwrap(),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
        assert!(sha256_of_file(&dir.path().join("gone")).is_err());
    }

    #[test]
    fn same_content_makes_the_same_archive() {
        let dir = tempfile::tempdir().unwrap();
        let make = |name: &str| {
            let mut w =
                TarGzWriter::create(&dir.path().join(name), "r", 42, Compression::default())
                    .unwrap();
            for _ in 0..3 {
                w.append_bytes(&EntryPath::new(&["a/b"], "f", "txt"), b"same")
                    .unwrap();
            }
            w.put_first(&EntryPath::new(&[], "first", "md"), b"same".to_vec());
            sha256_of_file(&w.finish().unwrap().path).unwrap()
        };
        assert_eq!(make("1"), make("2"));
    }
}
