use super::*;

const LINE: Kept = Kept {
    newline: true,
    cut: false,
};

fn cap(rendered: u64, raw: u64) -> Size {
    Size { rendered, raw }
}

/// The kept lines as (line, how, raw).
fn kept_lines(kept: &KeptTail, skip_first: u64) -> Vec<(String, Kept, u64)> {
    let mut lines = kept.lines();
    lines.skip_first(skip_first);
    let mut out = Vec::new();
    while let Some(l) = lines.next().unwrap() {
        out.push((String::from_utf8_lossy(l.line).into_owned(), l.how, l.raw));
    }
    out
}

fn texts(lines: &[(String, Kept, u64)]) -> Vec<&str> {
    lines.iter().map(|(l, ..)| l.as_str()).collect()
}

fn files_in(dir: &tempfile::TempDir) -> usize {
    std::fs::read_dir(dir.path()).unwrap().count()
}

#[test]
fn the_last_lines_within_the_cap_are_kept_in_order_and_the_files_go() {
    let dir = tempfile::tempdir().unwrap();
    // Each line "line-NNNN" took 11 bytes of the stream (say, with a CRLF).
    let mut keeper = TailKeeper::beside(&dir.path().join("log"), cap(u64::MAX, 110));
    for i in 0..1000 {
        keeper
            .push(format!("line-{i:04}").as_bytes(), LINE, 11)
            .unwrap();
    }
    let kept = keeper.finish().unwrap();
    // Never more than twice the cap on disk: 20 records of 14 bytes ("11 nline-0000\n").
    let on_disk: u64 = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|f| f.unwrap().metadata().unwrap().len())
        .sum();
    assert_eq!(on_disk, 20 * 14);
    let lines = kept_lines(&kept, 0);
    let expected: Vec<String> = (990..1000).map(|i| format!("line-{i:04}")).collect();
    assert_eq!(texts(&lines), expected);
    assert!(lines.iter().all(|(_, how, raw)| *how == LINE && *raw == 11));
    assert_eq!(kept.left_out_lines, 990);
    assert_eq!(kept.kept, cap(100, 110));
    assert_eq!(kept.read, cap(10_000, 11_000));
    drop(kept);
    assert_eq!(files_in(&dir), 0, "parts removed");
}

#[test]
fn a_stream_within_the_cap_is_kept_whole_with_how_each_line_ended() {
    let dir = tempfile::tempdir().unwrap();
    let mut keeper = TailKeeper::beside(&dir.path().join("log"), cap(u64::MAX, 1000));
    let last = Kept {
        newline: false,
        cut: true,
    };
    keeper.push(b"a", LINE, 2).unwrap();
    keeper.push(b"", LINE, 1).unwrap();
    keeper.push(b"b\xff", last, 500).unwrap();
    let kept = keeper.finish().unwrap();
    assert_eq!(kept.left_out_lines, 0);
    let mut lines = kept.lines();
    let mut seen = Vec::new();
    while let Some(l) = lines.next().unwrap() {
        seen.push((l.line.to_vec(), l.how, l.raw));
    }
    assert_eq!(
        seen,
        [
            (b"a".to_vec(), LINE, 2),
            (Vec::new(), LINE, 1),
            (b"b\xff".to_vec(), last, 500)
        ]
    );
}

#[test]
fn the_keeper_rotates_on_either_count() {
    let dir = tempfile::tempdir().unwrap();
    // Each line is 10 bytes kept but 100 in the log (say, cut when copied).
    let mut keeper = TailKeeper::beside(&dir.path().join("log"), cap(1000, 400));
    for i in 0..100 {
        keeper
            .push(format!("line {i:04}").as_bytes(), LINE, 100)
            .unwrap();
    }
    let kept = keeper.finish().unwrap();
    let lines = kept_lines(&kept, 0);
    assert_eq!(
        texts(&lines),
        ["line 0096", "line 0097", "line 0098", "line 0099"]
    );
    assert_eq!(kept.kept, cap(40, 400));
    assert_eq!(kept.read.raw, 100 * 100);
}

#[test]
fn the_first_kept_lines_give_way_to_less_room_whole() {
    let dir = tempfile::tempdir().unwrap();
    let mut keeper = TailKeeper::beside(&dir.path().join("log"), cap(100, 1000));
    for i in 0..1000 {
        keeper
            .push(format!("line {i:04}").as_bytes(), LINE, 10)
            .unwrap();
    }
    let kept = keeper.finish().unwrap();
    assert_eq!(kept_lines(&kept, 0).len(), 10);
    // 15 bytes: two lines of ten.
    let rest = kept_lines(&kept, 15);
    assert_eq!(texts(&rest)[0], "line 0992");
    assert_eq!(rest.len(), 8);
}

#[test]
fn the_last_line_stays_even_alone_over_the_cap() {
    let dir = tempfile::tempdir().unwrap();
    let mut keeper = TailKeeper::beside(&dir.path().join("log"), cap(200, 200));
    keeper.push(b"before", LINE, 7).unwrap();
    keeper.push(&[b'x'; 150], LINE, 600).unwrap();
    let kept = keeper.finish().unwrap();
    let lines = kept_lines(&kept, 0);
    assert_eq!(lines.len(), 1, "the line before it does not fit beside it");
    assert_eq!(lines[0].2, 600);
    assert_eq!(kept.kept, cap(151, 600));
    assert_eq!(kept.left_out_lines, 1);
}

#[test]
fn an_empty_stream_keeps_nothing_and_writes_no_file() {
    let dir = tempfile::tempdir().unwrap();
    let keeper = TailKeeper::beside(&dir.path().join("log"), cap(100, 100));
    let kept = keeper.finish().unwrap();
    assert!(kept_lines(&kept, 0).is_empty());
    assert_eq!(kept.kept, Size::default());
    assert_eq!(files_in(&dir), 0);
}

#[test]
fn a_record_without_its_size_is_an_error_not_a_line() {
    assert!(record_of(b"n-no size\n").is_err());
    assert!(record_of(b"12").is_err());
    let line = record_of(b"12 Nabc\n").unwrap();
    assert_eq!(
        (line.line, line.how, line.raw),
        (
            &b"abc"[..],
            Kept {
                newline: true,
                cut: true
            },
            12
        )
    );
}
