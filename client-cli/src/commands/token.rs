//! `token`: makes a random bearer token and the SHA-256 the access file
//! stores instead of it, or hashes an existing token. Local only: the point
//! is that the secret never needs to reach the server's disk.

use std::io::Read;

use serde::Serialize;
use sha2::{Digest, Sha256};

use super::Ctx;
use crate::{
    cli::TokenArgs,
    error::{CliError, Result},
};

/// Random bytes in a token: 256 bits, beyond any guessing.
const TOKEN_BYTES: usize = 32;

/// `token` as JSON.
#[derive(Debug, Serialize)]
struct Made {
    token: String,
    token_sha256: String,
    name: String,
    role: &'static str,
    paths: Vec<String>,
}

/// `token --hash` as JSON.
#[derive(Debug, Serialize)]
struct Hashed {
    token_sha256: String,
}

/// The lowercase hex SHA-256 of the token's UTF-8 bytes, as `token_sha256`
/// in the access file expects (and as `sha256sum` prints it).
pub fn sha256_hex(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

/// A new token: hex, so it is safe in a header, a shell and TOML as is.
fn new_token() -> String {
    hex::encode(rand::random::<[u8; TOKEN_BYTES]>())
}

/// The `[[identity]]` entry for the access file. JSON string syntax is
/// valid TOML basic-string syntax, so names and paths are quoted safely.
fn identity_entry(made: &Made) -> String {
    let quote = |text: &str| serde_json::to_string(text).unwrap_or_default();
    let paths: Vec<String> = made.paths.iter().map(|path| quote(path)).collect();
    format!(
        "[[identity]]\nname = {}\ntoken_sha256 = \"{}\"\nrole = \"{}\"\npaths = [{}]\n",
        quote(&made.name),
        made.token_sha256,
        made.role,
        paths.join(", ")
    )
}

/// Runs `token`.
pub fn run(ctx: &Ctx, args: TokenArgs) -> Result<()> {
    if let Some(token) = args.hash {
        let token = if token == "-" { read_stdin()? } else { token };
        if token.is_empty() {
            return Err(CliError::Usage("the token to hash is empty".to_owned()));
        }
        let hashed = Hashed {
            token_sha256: sha256_hex(&token),
        };
        return ctx.out.result(&hashed, || hashed.token_sha256.clone());
    }
    let token = new_token();
    let made = Made {
        token_sha256: sha256_hex(&token),
        token,
        name: args.name,
        role: args.role.as_str(),
        paths: if args.paths.is_empty() {
            vec![String::new()]
        } else {
            args.paths
        },
    };
    ctx.out.result(&made, || {
        format!(
            "token         {}\ntoken_sha256  {}\n\n\
             # For mmapd --access-file (it holds only the hash). Give the token to the\n\
             # client: MMAPCTL_TOKEN=... mmapctl ..., or `authorization: Bearer ...`.\n{}",
            made.token,
            made.token_sha256,
            identity_entry(&made)
        )
    })
}

/// The token from stdin, without the one newline `echo` or a file adds.
fn read_stdin() -> Result<String> {
    let mut text = String::new();
    std::io::stdin()
        .read_to_string(&mut text)
        .map_err(|err| CliError::local("cannot read the token from stdin", err))?;
    let text = text.strip_suffix('\n').unwrap_or(&text);
    Ok(text.strip_suffix('\r').unwrap_or(text).to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hash_matches_sha256sum() {
        // printf %s test | sha256sum
        assert_eq!(
            sha256_hex("test"),
            "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"
        );
    }

    #[test]
    fn tokens_are_fresh_hex() {
        let (a, b) = (new_token(), new_token());
        assert_eq!(a.len(), 2 * TOKEN_BYTES);
        assert!(a.bytes().all(|c| c.is_ascii_hexdigit()));
        assert_ne!(a, b);
    }

    #[test]
    fn entry_quotes_names_and_paths() {
        let made = Made {
            token: String::new(),
            token_sha256: "ab".to_owned(),
            name: "al\"ice".to_owned(),
            role: "read",
            paths: vec!["alice/".to_owned(), "shared/".to_owned()],
        };
        assert_eq!(
            identity_entry(&made),
            "[[identity]]\nname = \"al\\\"ice\"\ntoken_sha256 = \"ab\"\nrole = \"read\"\n\
             paths = [\"alice/\", \"shared/\"]\n"
        );
    }
}
