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
    let mut w = TarGzWriter::create(&path, "../../bundle\0", 42, Compression::default()).unwrap();
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
            TarGzWriter::create(&dir.path().join(name), "r", 42, Compression::default()).unwrap();
        for _ in 0..3 {
            w.append_bytes(&EntryPath::new(&["a/b"], "f", "txt"), b"same")
                .unwrap();
        }
        w.put_first(&EntryPath::new(&[], "first", "md"), b"same".to_vec());
        sha256_of_file(&w.finish().unwrap().path).unwrap()
    };
    assert_eq!(make("1"), make("2"));
}
