use super::*;

/// A page of the operator's shape with `body` after its head.
fn page(body: &str) -> String {
    format!(
        "{REPORT_HEAD_START}{}{REPORT_HEAD_END}t</title><style>p > a {{ color: red }}</style></head>{body}</html>\n",
        "A".repeat(43) + "="
    )
}

/// A bundle folder holding `files`; the folder.
fn bundle(files: &[(&str, &[u8])]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    for (path, data) in files {
        let path = dir.path().join(path);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, data).unwrap();
    }
    dir
}

fn report_linking(href: &str) -> String {
    page(&format!(
        r##"<body><main><a class="cover" href="{href}">open</a><a href="#f1">1</a></main></body>"##
    ))
}

#[test]
fn a_bundle_of_the_operator_s_report_and_files_passes() {
    let report = report_linking("./logs/velero.log");
    let dir = bundle(&[
        ("b1/report.html", report.as_bytes()),
        (
            "b1/logs/velero.log",
            b"time=\"2026\" level=info msg=\"<b>\"\n",
        ),
        ("b1/summary.md", b"# Restore r1\n"),
        ("b1/pods/p.yaml", b"apiVersion: v1\nkind: Pod\n"),
    ]);
    every_page_ours(dir.path()).unwrap();
}

#[test]
fn a_second_page_with_a_script_keeps_the_bundle_closed() {
    let report = report_linking("./other.html");
    let script = b"<!DOCTYPE html><html><body><script>alert(1)</script></body></html>";
    let dir = bundle(&[
        ("b1/report.html", report.as_bytes()),
        ("b1/other.html", script),
    ]);
    let e = every_page_ours(dir.path()).unwrap_err();
    assert!(
        e.to_string().starts_with("b1/other.html is not a page"),
        "{e}"
    );
    // Named otherwise: by its extension whatever its case, or by markup first, as browsers
    // sniff a file of no known type.
    for (name, content) in [
        ("b1/OTHER.HTM", &script[..]),
        ("b1/image.svg", b"<svg onload=\"alert(1)\"/>"),
        (
            "b1/logs/velero.log",
            b"\xef\xbb\xbf \n<html><script>alert(1)</script>",
        ),
        ("b1/no-extension", b"<script>alert(1)</script>"),
    ] {
        let dir = bundle(&[("b1/report.html", report.as_bytes()), (name, content)]);
        let e = every_page_ours(dir.path()).unwrap_err();
        assert!(e.to_string().starts_with(name), "{name}: {e}");
    }
}

#[test]
fn attribute_names_are_read_whatever_their_case() {
    let refused = [
        (
            r#"<body><a HREF="https://evil.example/">a</a></body>"#,
            "link out",
        ),
        (r#"<body><a Href="./../../x.html">a</a></body>"#, "link out"),
        (r#"<body><p ONCLICK="x()">a</p></body>"#, "event handler"),
        ("<body><SCRIPT>alert(1)</SCRIPT></body>", "<script"),
    ];
    for (body, why) in refused {
        let e = check_page(page(body).as_bytes()).unwrap_err();
        assert!(e.contains(why), "{body}: {e}");
    }
    // What a browser reads as the operator's markup is the operator's markup.
    check_page(page(r##"<BODY><A HREF="./logs/Velero.log">a</A></BODY>"##).as_bytes()).unwrap();
}

#[test]
fn links_leaving_the_bundle_s_folder_are_refused() {
    for href in [
        "./../x.html",
        "./a/%2e%2e/%2E%2E/x.html",
        "./a%2f..%2f..%2fx.html",
        r"./a\..\x.html",
        "./a/&#46;&#46;/x.html",
        "./a?x=1",
        "//evil.example/x",
        "x.html",
    ] {
        let e = check_page(report_linking(href).as_bytes()).unwrap_err();
        assert!(e.contains("link out of the bundle"), "{href}: {e}");
    }
    for href in [
        "./logs/velero.log",
        "./a%20b/c%3Fd%23e",
        "#f1",
        "./.hidden/x",
    ] {
        check_page(report_linking(href).as_bytes()).unwrap();
    }
}
