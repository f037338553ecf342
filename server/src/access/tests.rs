//! The access file's parsing and the identity and role checks.
use super::*;

const TOKEN_A: &str = "alice-token";

fn file() -> String {
    format!(
        r#"
[[identity]]
name = "alice"
token_sha256 = "{}"
role = "readwrite"
paths = ["alice/", "shared/"]

[[identity]]
name = "carol"        # certificate only
role = "read"
paths = [""]
"#,
        token_hash(TOKEN_A)
    )
}

#[test]
fn token_hash_is_hex_sha256() {
    // sha256("test"), as `printf test | sha256sum` prints it.
    assert_eq!(
        token_hash("test"),
        "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"
    );
}

#[test]
fn parses_identities_and_finds_them_by_token_and_name() {
    let f = AccessFile::parse(&file()).unwrap();
    assert_eq!(f.len(), 2);
    let alice = f.by_token(TOKEN_A).unwrap();
    assert_eq!(alice.name, "alice");
    assert_eq!(alice.role, Role::Readwrite);
    assert!(alice.covers("shared/x") && !alice.covers("bob/x"));
    assert!(f.by_token("wrong").is_none());
    assert_eq!(f.by_name("carol").unwrap().role, Role::Read);
    assert!(f.by_name("mallory").is_none());
}

#[test]
fn prefixes_are_normalized_like_paths() {
    let text = "[[identity]]\nname = \"a\"\nrole = \"read\"\npaths = [\"./a//b/\", \"c\", \"\"]";
    let f = AccessFile::parse(text).unwrap();
    assert_eq!(f.by_name("a").unwrap().paths, ["a/b/", "c", ""]);
    for bad in ["/", "/etc/", "../x/", "a/../../b"] {
        let text = format!("[[identity]]\nname = \"a\"\nrole = \"read\"\npaths = [{bad:?}]");
        assert!(AccessFile::parse(&text).is_err(), "{bad}");
    }
}

#[test]
fn mistakes_are_refused_with_a_reason() {
    let one = |extra: &str| format!("[[identity]]\nname = \"a\"\n{extra}");
    let bad = [
        (one("role = \"root\"\npaths = [\"\"]"), "root"),
        (one("role = \"read\""), "paths"),
        (
            one("role = \"read\"\npaths = [\"\"]\ntoken_sha256 = \"abc\""),
            "64 hex",
        ),
        (
            one("role = \"read\"\npaths = [\"../x\"]"),
            "not under the root",
        ),
        (one("role = \"read\"\npaths = [\"\"]\nrule = 1"), "rule"),
        (
            one("role = \"read\"\npaths = [\"\"]\n") + &one("role = \"read\"\npaths = [\"\"]"),
            "twice",
        ),
        (
            "[[identity]]\nname = \"\"\nrole = \"read\"\npaths = [\"\"]".to_owned(),
            "empty",
        ),
    ];
    for (text, says) in bad {
        let err = AccessFile::parse(&text).unwrap_err();
        assert!(err.contains(says), "{text:?} -> {err}");
    }
}

fn policy(text: &str, client_certs: bool) -> (tempfile::TempDir, Policy) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("access.toml");
    std::fs::write(&path, text).unwrap();
    let policy = Policy::new(Some(&path), client_certs).unwrap();
    (dir, policy)
}

#[test]
fn identify_needs_a_valid_credential() {
    let (_dir, p) = policy(&file(), true);
    let name = |c: Result<Caller>| c.map(|c| c.owner().unwrap().to_owned());
    assert_eq!(name(p.identify(Some(TOKEN_A), None)).unwrap(), "alice");
    assert_eq!(name(p.identify(None, Some("carol"))).unwrap(), "carol");
    for (token, cert) in [
        (None, None),
        (Some("nope"), None),
        (None, Some("mallory")),
        // A wrong token is not rescued by a good certificate.
        (Some("nope"), Some("carol")),
    ] {
        assert!(
            matches!(p.identify(token, cert), Err(Error::Unauthenticated(_))),
            "{token:?} {cert:?}"
        );
    }
    let open = Policy::new(None, false).unwrap();
    assert!(open.identify(None, None).unwrap().identity().is_none());
    // mTLS alone: the CA vouches, and the name owns the sessions.
    let mtls = Policy::new(None, true).unwrap();
    let caller = mtls.identify(None, Some("dave")).unwrap();
    assert_eq!(caller.owner(), Some("dave"));
    assert!(!caller.sees_all(), "certificates alone do not make admins");
    assert!(mtls.identify(None, None).is_err());
}

#[test]
fn reload_swaps_the_file_and_keeps_the_old_one_when_the_new_is_bad() {
    let (dir, p) = policy(&file(), false);
    let path = dir.path().join("access.toml");
    let bob = format!(
        "[[identity]]\nname = \"bob\"\ntoken_sha256 = \"{}\"\nrole = \"admin\"\npaths = [\"\"]\n",
        token_hash("bob-token")
    );
    std::fs::write(&path, &bob).unwrap();
    let mut revoked_first = Vec::new();
    let reloaded = p
        .reload(|revoked| revoked_first = revoked.to_vec())
        .unwrap();
    assert_eq!(revoked_first, ["alice", "carol"]);
    assert_eq!(reloaded.identities, 1);
    assert_eq!(reloaded.revoked, ["alice", "carol"]);
    assert!(p.identify(Some("bob-token"), None).is_ok());
    assert!(p.identify(Some(TOKEN_A), None).is_err());
    std::fs::write(&path, "not toml [").unwrap();
    assert!(p.reload(|_| panic!("a bad file revoked someone")).is_err());
    assert!(p.identify(Some("bob-token"), None).is_ok());
}

#[test]
fn roles_limit_actions_and_writable_maps() {
    let reader = Caller::new(Identity {
        name: "r".into(),
        role: Role::Read,
        paths: vec![String::new()],
    });
    let writer = Caller::new(Identity {
        name: "w".into(),
        role: Role::Readwrite,
        paths: vec!["w/".into()],
    });
    for action in [Action::Resize, Action::Flush, Action::Move] {
        match reader.check(action, "m") {
            Err(Error::Denied { target, .. }) => assert_eq!(target, "m"),
            other => panic!("{other:?}"),
        }
        writer.check(action, "m").unwrap();
        Caller::open().check(action, "m").unwrap();
    }
    reader.check_map("x", "", 1, false).unwrap();
    reader.check_map("x", "", 3, false).unwrap();
    for access in [0, 2, 9] {
        assert!(
            reader.check_map("x", "", access, false).is_err(),
            "{access}"
        );
    }
    // Creating a file is writing, whatever the access.
    assert!(reader.check_map("x", "", 1, true).is_err());
    writer.check_map("w/x", "", 2, true).unwrap();
    writer.check_map("", "w/region", 2, false).unwrap();
    writer.check_map("", "", 2, false).unwrap();
    assert!(writer.check_map("", "region", 2, false).is_err());
    assert!(writer.check_map("wx", "", 2, false).is_err());
    // Only a caller who may map everything follows symlinks.
    assert_eq!(writer.symlinks(), Symlinks::Refuse);
    assert_eq!(reader.symlinks(), Symlinks::Follow);
    assert_eq!(Caller::open().symlinks(), Symlinks::Follow);
    assert!(!reader.sees_all() && !writer.sees_all() && Caller::open().sees_all());
}
