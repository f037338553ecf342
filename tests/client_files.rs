//! End-to-end tests of the Rust client's `Files` calls against a real
//! server: `list` across pages and `list_pages` one page at a time, and the
//! typed results of `stat_path`, `make_dir`, `remove`, `rename` and
//! `truncate`, with their errors as `mmapd::Error`.

mod support;

use mmapd::{Client, FileKind};
use support::TestServer;
use tonic::Code;

async fn client(server: &TestServer) -> Client {
    Client::connect(server.endpoint()).await.expect("connect")
}

#[tokio::test(flavor = "multi_thread")]
async fn list_walks_every_page_and_list_pages_yields_them_one_by_one() {
    let server = TestServer::start_with(|config| config.limits.max_page_size = 3).await;
    for i in 0..7 {
        std::fs::write(server.path(&format!("f{i}")), b"x").expect("write");
    }
    std::fs::create_dir(server.path("sub")).expect("mkdir");
    std::fs::write(server.path("sub/inner"), b"yz").expect("write");
    let client = client(&server).await;

    let names = |entries: &[mmapd::FileEntry]| -> Vec<String> {
        entries.iter().map(|e| e.path.clone()).collect()
    };
    let all = client.list("", false).await.expect("list");
    assert_eq!(
        names(&all),
        ["f0", "f1", "f2", "f3", "f4", "f5", "f6", "sub"]
    );
    let tree = client.list("", true).await.expect("list -R");
    assert_eq!(tree.len(), 9);
    assert_eq!(tree[8].path, "sub/inner");
    assert_eq!(tree[8].size, 2);
    assert_eq!(tree[7].kind(), FileKind::Dir);
    assert!(tree[8].modified().is_some());

    // A page size below the server's limit is honoured; the last page ends it.
    let mut pages = client.list_pages("", false).page_size(2);
    let mut sizes = Vec::new();
    while let Some(page) = pages.next_page().await.expect("page") {
        sizes.push(page.len());
    }
    assert_eq!(sizes, [2, 2, 2, 2]);
    assert!(pages.next_page().await.expect("after the end").is_none());

    // An empty folder is one empty page.
    std::fs::create_dir(server.path("empty")).expect("mkdir");
    let mut pages = client.list_pages("empty", false);
    assert_eq!(pages.next_page().await.expect("page"), Some(Vec::new()));
    assert_eq!(pages.next_page().await.expect("end"), None);
}

#[tokio::test(flavor = "multi_thread")]
async fn the_file_calls_return_typed_results_and_os_errors() {
    let server = TestServer::start().await;
    let client = client(&server).await;

    assert!(client.make_dir("a/b", true).await.expect("makedirs"));
    assert!(!client.make_dir("a/b", true).await.expect("exists ok"));
    let entry = client
        .truncate("a/b/f.bin", 100, true)
        .await
        .expect("create");
    assert_eq!((entry.path.as_str(), entry.size), ("a/b/f.bin", 100));
    assert_eq!(entry.kind(), FileKind::File);
    let stat = client.stat_path("a/b/f.bin").await.expect("stat");
    assert_eq!(stat.size, 100);
    assert!(!stat.mapped);

    client
        .rename("a/b/f.bin", "a/g.bin", false)
        .await
        .expect("rename");
    client.truncate("a/h.bin", 1, true).await.expect("create");
    let err = client
        .rename("a/g.bin", "a/h.bin", false)
        .await
        .expect_err("target exists");
    assert_eq!(err.reason(), Some("OS_ERROR"));
    assert_eq!(
        err.metadata()
            .and_then(|m| m.get("exception"))
            .map(String::as_str),
        Some("FileExistsError")
    );
    client
        .rename("a/g.bin", "a/h.bin", true)
        .await
        .expect("replace");
    assert_eq!(client.stat_path("a/h.bin").await.expect("stat").size, 100);

    // a, a/b, a/h.bin.
    assert_eq!(client.remove("a", true).await.expect("rmtree"), 3);
    let err = client.stat_path("a").await.expect_err("gone");
    assert_eq!(err.code(), Some(Code::NotFound));
    assert_eq!(err.errno(), Some(2));
    let err = client.list("../", false).await.expect_err("escape");
    assert_eq!(err.reason(), Some("PATH_ESCAPE"));
}

/// A page that fails can be asked for again: the token stays until its
/// page arrives, so an error never reads as the end of the listing.
#[tokio::test(flavor = "multi_thread")]
async fn a_failed_page_is_retried_not_taken_for_the_end() {
    let server = TestServer::start_with(|config| config.limits.max_page_size = 2).await;
    std::fs::create_dir(server.path("pg")).expect("mkdir");
    for i in 0..5 {
        std::fs::write(server.path(&format!("pg/{i}")), b"x").expect("write");
    }
    let client = client(&server).await;
    let mut pages = client.list_pages("pg", false);
    let first = pages.next_page().await.expect("page 1").expect("a page");
    assert_eq!(first.len(), 2);
    std::fs::rename(server.path("pg"), server.path("away")).expect("move away");
    pages.next_page().await.expect_err("the folder is gone");
    std::fs::rename(server.path("away"), server.path("pg")).expect("move back");
    let mut rest = Vec::new();
    while let Some(page) = pages.next_page().await.expect("page") {
        rest.extend(page.into_iter().map(|e| e.path));
    }
    assert_eq!(rest, ["pg/2", "pg/3", "pg/4"]);
}
