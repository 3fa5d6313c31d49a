//! Random secrets and the codes people type: tokens, join codes, facilitator keys, lab ids.
//!
//! Secrets are stored only as SHA-256 hashes. They are long random strings, so a fast hash is
//! enough: there is nothing to guess from the hash.

use std::io::Write;
use std::path::Path;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use rand::Rng;
use sha2::{Digest, Sha256};

/// Characters of join codes and facilitator keys: no 0/O, no 1/I/L, so a code read off a
/// projector or typed on a phone cannot be mistaken.
pub const CODE_ALPHABET: &[u8] = b"23456789ABCDEFGHJKMNPQRSTUVWXYZ";

/// Length of a join code: 31^6, about 887 million codes, typed in a few seconds.
pub const JOIN_CODE_LEN: usize = 6;

/// Random bytes in an access token (256 bits).
const TOKEN_BYTES: usize = 32;

/// Characters of a lab id (lowercase, for URLs): 36^12, about 62 bits.
const LAB_ID_ALPHABET: &[u8] = b"abcdefghijklmnopqrstuvwxyz0123456789";
const LAB_ID_LEN: usize = 12;

/// File in the data directory that keeps the generated organizer token.
pub const ADMIN_TOKEN_FILE: &str = "admin-token";

/// SHA-256 of a secret, as stored.
pub fn hash(secret: &str) -> Vec<u8> {
    Sha256::digest(secret.as_bytes()).to_vec()
}

/// A new bearer token.
/// Characters of a device key a phone may send (see [`author_id`]).
pub const MAX_DEVICE_KEY_CHARS: usize = 128;

/// The author id of a device in a lab: derived from a key only that device knows (it sends it
/// when joining), so a phone keeps its notes across sign-ins while nobody who only sees the id
/// on the board can claim it. Without a key, a fresh random id.
pub fn author_id(lab_id: &str, device_key: Option<&str>) -> String {
    let digest = match device_key {
        Some(key) => Sha256::new()
            .chain_update(b"labboard author id\0")
            .chain_update(lab_id.as_bytes())
            .chain_update(b"\0")
            .chain_update(key.as_bytes())
            .finalize()
            .to_vec(),
        None => hash(&new_token()),
    };
    let hex: String = digest[..12].iter().map(|b| format!("{b:02x}")).collect();
    format!("a{hex}")
}

pub fn new_token() -> String {
    let bytes: [u8; TOKEN_BYTES] = rand::random();
    URL_SAFE_NO_PAD.encode(bytes)
}

fn random_string(alphabet: &[u8], len: usize) -> String {
    let mut rng = rand::rng();
    (0..len)
        .map(|_| alphabet[rng.random_range(0..alphabet.len())] as char)
        .collect()
}

pub fn new_join_code() -> String {
    random_string(CODE_ALPHABET, JOIN_CODE_LEN)
}

/// Four groups of four code characters (about 79 bits), e.g. `K7QD-9XMT-…`.
pub fn new_facilitator_key() -> String {
    (0..4)
        .map(|_| random_string(CODE_ALPHABET, 4))
        .collect::<Vec<_>>()
        .join("-")
}

pub fn new_lab_id() -> String {
    random_string(LAB_ID_ALPHABET, LAB_ID_LEN)
}

/// A join code as people type it (any case, spaces or dashes) in canonical form, or `None` if
/// it cannot be a join code.
pub fn normalize_join_code(input: &str) -> Option<String> {
    let code: String = input
        .chars()
        .filter(|c| !c.is_whitespace() && *c != '-')
        .map(|c| c.to_ascii_uppercase())
        .collect();
    let valid = code.len() == JOIN_CODE_LEN && code.bytes().all(|b| CODE_ALPHABET.contains(&b));
    valid.then_some(code)
}

/// A facilitator key as typed, in canonical form (uppercase, dashes where they belong).
pub fn normalize_facilitator_key(input: &str) -> String {
    let chars: Vec<char> = input
        .chars()
        .filter(|c| c.is_ascii_alphanumeric())
        .map(|c| c.to_ascii_uppercase())
        .collect();
    chars
        .chunks(4)
        .map(|group| group.iter().collect::<String>())
        .collect::<Vec<_>>()
        .join("-")
}

/// The organizer token: the configured one, else the one in `file`, else the one kept in the
/// data directory, else a new one written there (readable by the owner only).
pub fn organizer_token(
    configured: Option<&str>,
    file: Option<&Path>,
    data_dir: &Path,
) -> std::io::Result<String> {
    load_or_create_organizer_token(configured, file, data_dir).map(|found| found.token)
}

/// The organizer token, and whether this call generated it.
#[derive(Debug, Clone)]
pub struct OrganizerToken {
    pub token: String,
    /// True when no token was configured or kept, so a new one was written to the data
    /// directory just now: the first start.
    pub generated: bool,
}

/// Like [`organizer_token`], saying whether the token was generated just now.
pub fn load_or_create_organizer_token(
    configured: Option<&str>,
    file: Option<&Path>,
    data_dir: &Path,
) -> std::io::Result<OrganizerToken> {
    if let Some(token) = existing_organizer_token(configured, file, data_dir)? {
        return Ok(OrganizerToken {
            token,
            generated: false,
        });
    }
    crate::storage::create_data_dir(data_dir)?;
    let token = new_token();
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options.open(data_dir.join(ADMIN_TOKEN_FILE))?;
    file.write_all(token.as_bytes())?;
    file.sync_all()?;
    Ok(OrganizerToken {
        token,
        generated: true,
    })
}

/// The organizer token the server would use, without generating one: the configured one, else
/// the one in `file`, else the one kept in the data directory, else `None`.
pub fn existing_organizer_token(
    configured: Option<&str>,
    file: Option<&Path>,
    data_dir: &Path,
) -> std::io::Result<Option<String>> {
    if let Some(token) = configured.filter(|t| !t.trim().is_empty()) {
        return Ok(Some(token.trim().to_owned()));
    }
    if let Some(file) = file {
        return read_token_file(file).map(Some);
    }
    match std::fs::read_to_string(data_dir.join(ADMIN_TOKEN_FILE)) {
        Ok(token) if !token.trim().is_empty() => Ok(Some(token.trim().to_owned())),
        Ok(_) => Ok(None),
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(err) => Err(err),
    }
}

/// The token in `path`, trimmed; an error naming the file if it cannot be read or is empty.
fn read_token_file(path: &Path) -> std::io::Result<String> {
    let named = |err: std::io::Error| {
        std::io::Error::new(err.kind(), format!("reading {}: {err}", path.display()))
    };
    let text = std::fs::read_to_string(path).map_err(named)?;
    let token = text.trim();
    if token.is_empty() {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            format!("the token file {} is empty", path.display()),
        ));
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(path).map_err(named)?.permissions().mode();
        if mode & 0o077 != 0 {
            tracing::warn!(
                file = %path.display(),
                mode = format_args!("{:o}", mode & 0o777),
                "the organizer token file is readable by other users; make it owner-only (chmod 600)"
            );
        }
    }
    Ok(token.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn join_codes_avoid_look_alikes_and_normalize() {
        for _ in 0..200 {
            let code = new_join_code();
            assert_eq!(code.len(), JOIN_CODE_LEN);
            assert!(!code.contains(['0', 'O', '1', 'I', 'L']), "{code}");
            assert_eq!(
                normalize_join_code(&code.to_lowercase()),
                Some(code.clone())
            );
        }
        assert_eq!(normalize_join_code(" ab-c 234 "), Some("ABC234".into()));
        assert_eq!(normalize_join_code("ABC23"), None);
        assert_eq!(normalize_join_code("ABC2340"), None);
        assert_eq!(normalize_join_code("ABCD1O"), None);
    }

    #[test]
    fn facilitator_keys_normalize_from_sloppy_typing() {
        let key = new_facilitator_key();
        assert_eq!(key.len(), 19);
        let sloppy = key.replace('-', " ").to_lowercase();
        assert_eq!(normalize_facilitator_key(&sloppy), key);
    }

    #[test]
    fn tokens_are_long_and_distinct() {
        let a = new_token();
        assert_eq!(a.len(), 43);
        assert_ne!(a, new_token());
        assert_eq!(hash(&a).len(), 32);
    }

    #[test]
    fn the_organizer_token_is_kept_across_starts() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(
            existing_organizer_token(None, None, dir.path()).unwrap(),
            None
        );
        let first = load_or_create_organizer_token(None, None, dir.path()).unwrap();
        assert!(first.generated);
        let first = first.token;
        assert_eq!(organizer_token(None, None, dir.path()).unwrap(), first);
        let again = load_or_create_organizer_token(None, None, dir.path()).unwrap();
        assert!(!again.generated);
        assert_eq!(
            existing_organizer_token(None, None, dir.path()).unwrap(),
            Some(first.clone())
        );
        assert_eq!(
            organizer_token(Some("configured"), None, dir.path()).unwrap(),
            "configured"
        );
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(dir.path().join(ADMIN_TOKEN_FILE))
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600);
            // A data directory it has to create is the owner's only.
            let fresh = dir.path().join("fresh");
            organizer_token(None, None, &fresh).unwrap();
            let mode = std::fs::metadata(&fresh).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o700);
        }
    }

    #[test]
    fn the_organizer_token_can_come_from_a_file() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("organizer");
        std::fs::write(&file, "  from-a-file\n").unwrap();
        let data = dir.path().join("data");
        assert_eq!(
            organizer_token(None, Some(&file), &data).unwrap(),
            "from-a-file"
        );
        // The file does not replace a token given directly, and nothing is generated.
        assert_eq!(
            organizer_token(Some("direct"), Some(&file), &data).unwrap(),
            "direct"
        );
        assert!(!data.join(ADMIN_TOKEN_FILE).exists());

        std::fs::write(&file, "\n").unwrap();
        let empty = organizer_token(None, Some(&file), &data).unwrap_err();
        assert!(empty.to_string().contains("is empty"), "{empty}");
        let missing = dir.path().join("missing");
        let err = organizer_token(None, Some(&missing), &data).unwrap_err();
        assert!(err.to_string().contains("missing"), "{err}");
    }
}
